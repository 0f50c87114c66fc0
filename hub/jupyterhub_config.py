"""JupyterHub configuration of hubstack.

Every setting comes from the environment that Compose passes in, read and
checked by hubstack.common (the same package the `hubstack` CLI uses), and
every name and path from hubstack.common.contract. Upstream defaults are
kept wherever they work.
"""

import sys
from pathlib import Path

from hubstack.common import contract, datasets, groups, profiles
from hubstack.common.login import dev_metrics_token
from hubstack.common.parse import SettingsError
from hubstack.common.policy import check_data_mode, check_mode
from hubstack.common.settings import load
from hubstack_hub import metrics
from hubstack_hub.roles import cli_service
from hubstack_hub.sharing import ShareGuard
from hubstack_hub.users import service_token

c = get_config()  # noqa: F821

try:
    settings = load()
    login = check_mode(settings, contract.SECRETS_MOUNT, contract.ACCESS_MOUNT)  # None in dev mode
    # Never dev mode on production data, nor production on dev data unless adopted.
    mode_file = Path(contract.DATA_MODE_FILE)
    record = check_data_mode(mode_file.read_text().strip() if mode_file.is_file() else None, settings)
    if record:
        mode_file.write_text(record + "\n")
    # The operator's datasets (access/datasets.toml): never a hub that cannot mount one.
    catalogue = datasets.load(contract.ACCESS_MOUNT, settings.raw["HUBSTACK_ACCESS_DIR"], check_folders=False)
    datasets.check_sources(catalogue, login)
    # The operator's groups (access/groups.toml: members, shared folders) and the server profiles
    # researchers choose from (access/profiles.toml; one, without the file).
    operator_groups = groups.load(contract.ACCESS_MOUNT, settings.raw["HUBSTACK_ACCESS_DIR"])
    server_profiles = profiles.load(
        contract.ACCESS_MOUNT, settings.raw["HUBSTACK_ACCESS_DIR"], settings.limits, operator_groups
    )
    from hubstack_hub.diskguard import DiskGuard
    from hubstack_hub.stacknet import refuse_plain_http_off_the_stack, volume_attributes

    datasets.check_volumes(catalogue, settings.names, volume_attributes)
    if login is not None:
        refuse_plain_http_off_the_stack(
            {
                "OAUTH2_TOKEN_URL": login.token_url,
                "OAUTH2_USERDATA_URL": login.userdata_url,
                "HUBSTACK_REGISTRY_URL": login.registry_url,
                **{f"the jku of passport issuer {iss}": jku for iss, jku in catalogue.passports.issuers.items()},
            },
            settings.names.network,
        )
    # Prometheus's token (hubstack_hub.metrics): production requires it, dev mode uses it if made.
    metrics_token = (
        login.metrics_token if login else dev_metrics_token(contract.SECRETS_MOUNT, settings.shown_secrets_dir)
    )
except SettingsError as err:
    # One line that says what to fix, not a traceback.
    print(f"hubstack: {err}", file=sys.stderr)
    sys.exit(1)

# The hub listens on all interfaces of its container; user servers reach it by
# its Compose service name on the instance's network.
names = settings.names
c.JupyterHub.port = contract.HUB_PORT
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_port = contract.HUB_API_PORT
c.JupyterHub.hub_connect_ip = contract.HUB_SERVICE
c.JupyterHub.db_url = f"sqlite:///{contract.HUB_DATABASE}"
c.JupyterHub.cookie_secret_file = f"{contract.HUB_DATA}/{contract.COOKIE_SECRET}"  # dev mode; production: secrets/
# A log-in lasts HUBSTACK_COOKIE_MAX_AGE_DAYS (the hub's tokens for user servers
# too); an API token a user makes lasts at most HUBSTACK_TOKEN_MAX_AGE_DAYS (one
# asked for without an expiry gets that, never "forever").
c.JupyterHub.cookie_max_age_days = settings.cookie_max_age_days
c.JupyterHub.token_expires_in_max_seconds = settings.token_max_age_seconds
# User servers outlive a hub restart (`hubstack reset`, an upgrade).
c.JupyterHub.cleanup_servers = False
# Look and feel: share/templates (live edits, see `hubstack shell`) first.
c.JupyterHub.template_paths = [f"{contract.SHARE_MOUNT}/templates", contract.HUB_TEMPLATES]
template_vars = {"hubstack_title": settings.title, "dev_mode": settings.dev_mode}  # c.JupyterHub's, set below
template_vars["hubstack_welcome"] = contract.WELCOME_TEMPLATE  # the operator's text (README.md, 'Pages')
if (Path(contract.SHARE_MOUNT) / contract.SHARE_LOGO).is_file():
    c.JupyterHub.logo_file = f"{contract.SHARE_MOUNT}/{contract.SHARE_LOGO}"

c.JupyterHub.spawner_class = "hubstack_hub.spawner.HubstackSpawner"
c.HubstackSpawner.instance = settings.name
c.DockerSpawner.image = names.image("notebook")
c.DockerSpawner.pull_policy = "never"  # images are built here; no registry
c.DockerSpawner.network_name = names.network
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = names.user_prefix
c.DockerSpawner.remove = True
# The whole home persists, in a volume named with DockerSpawner's escaping
# ({username}), so e-mail addresses work.
c.DockerSpawner.volumes = {names.home_volume_template: contract.USER_HOME}
c.DockerSpawner.notebook_dir = contract.USER_HOME
# Where user servers may connect (hubstack.common.egress, README.md 'Egress'): closed puts each
# on a network of its own with only the hub and the egress proxy.
c.HubstackSpawner.egress = settings.egress
if settings.egress.closed:
    import docker

    from hubstack.common.egress import reattach

    try:
        reattach(docker.from_env(), names)  # the running servers' networks, after a restart of the hub
    except docker.errors.DockerException as err:  # no engine here: the spawner says so at the first start
        print(f"hubstack: cannot attach to the user networks: {err}", file=sys.stderr)

# What one user server may use: one researcher who allocates without end or
# fork-bombs is stopped alone (README.md, 'Limits'). A profile's own limits replace
# memory, CPU and pids at its start (README.md, 'Profiles').
limits = settings.limits
c.DockerSpawner.mem_limit = limits.mem_bytes
c.DockerSpawner.cpu_limit = limits.cpus
c.DockerSpawner.extra_host_config = limits.host_config()  # no swap, pids, no capabilities
c.HubstackSpawner.profiles = server_profiles
c.HubstackSpawner.groups = operator_groups  # each group folder at /shared/<group> for its members
# The engine starts a few servers at a time fastest; the others wait in line, in the
# order they asked, on the progress page (hubstack_hub.startline), instead of
# JupyterHub's 429 and a retry in random order after a random wait.
c.HubstackSpawner.start_places = limits.spawn_concurrency
c.JupyterHub.concurrent_spawn_limit = 0  # the line replaces it
c.JupyterHub.tornado_settings = {}
if settings.tls.on:
    # Behind HTTPS every cookie is Secure: JupyterHub marks its log-in cookies so
    # by itself (the request is https), its _xsrf cookie only when told.
    c.JupyterHub.tornado_settings["xsrf_cookie_kwargs"] = {"secure": True}
c.JupyterHub.active_server_limit = limits.max_servers
# The operator's `hubstack users` reads and deletes users as a service of its own (hubstack_hub.roles).
cli, cli_role = cli_service(service_token())
services, roles = [cli], [cli_role]  # c.JupyterHub.services and load_roles, set once below
if limits.idle_timeout:
    # Stops servers idle for HUBSTACK_IDLE_TIMEOUT seconds; their volumes stay.
    services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={limits.idle_timeout}",
                f"--cull-every={limits.cull_every}",
            ],
        }
    )
    roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )

if settings.dev_mode:
    from hubstack_hub.names import DEV_PATTERN

    if settings.dev_password:
        c.JupyterHub.authenticator_class = "hubstack_hub.dev.DevPasswordAuthenticator"
        c.SharedPasswordAuthenticator.user_password = settings.dev_password
    else:
        c.JupyterHub.authenticator_class = "hubstack_hub.dev.DevAuthenticator"
    c.Authenticator.allow_all = True
    c.Authenticator.username_pattern = DEV_PATTERN
    from hubstack_hub.audit import hub_log
    from hubstack_hub.grants import build_gate

    gate = build_gate(catalogue, audit=hub_log())  # dev mode: only open datasets mount
else:
    # Production: identity from OAuth, then the access check (hubstack_hub.auth).
    # No allow_all: JupyterHub would skip the access check.
    from hubstack_hub.access import build_checker
    from hubstack_hub.auth import CLASSES
    from hubstack_hub.decision import APPROVED, Decision
    from hubstack_hub.identity import github_teams
    from hubstack_hub.names import PRODUCTION_PATTERN
    from hubstack_hub.roles import admin_roles

    authenticator = CLASSES[login.provider]
    c.JupyterHub.authenticator_class = authenticator
    auth = c[authenticator.__name__]
    # Generated by `hubstack secrets init`, read from the secrets mount.
    c.JupyterHub.cookie_secret = bytes.fromhex(login.cookie_secret)
    c.CryptKeeper.keys = [login.crypt_key]
    auth.enable_auth_state = True  # the provider's tokens, encrypted with the crypt key
    auth.client_id = login.client_id
    auth.client_secret = login.client_secret
    auth.oauth_callback_url = login.callback_url
    # Operators get a role that runs the hub without opening researchers' servers
    # (hubstack_hub.roles); admin_users/admin_groups are not used, so that the role
    # lists below are the whole truth.
    roles += admin_roles(login.admin_users, login.admin_groups, login.admin_full_access)
    auth.any_allow_config = True  # the access check is the allow rule
    auth.username_pattern = PRODUCTION_PATTERN  # ASCII e-mail addresses only (hubstack_hub.names)
    auth.access_checker = build_checker(login, contract.AUDIT_LOG)
    from hubstack_hub.grants import build_gate

    gate = auth.dataset_gate = build_gate(catalogue, auth.access_checker, timeout=login.registry_timeout)
    if login.admin_full_access:
        full = Decision(APPROVED, "operator", "HUBSTACK_ADMIN_FULL_ACCESS=1: may open every server and act as anyone")
        for who in sorted(login.admin_users) + [f"group:{g}" for g in sorted(login.admin_groups)]:
            auth.access_checker.audit.write("admin-full-access", who, full, 0)
    auth.apply_url = login.apply_url
    auth.auth_refresh_age = login.recheck_seconds
    if login.provider == "oidc":
        auth.authorize_url = login.authorize_url
        auth.token_url = login.token_url
        auth.userdata_url = login.userdata_url
        auth.scope = list(login.scope)
        auth.username_claim = "email"
        auth.login_service = "your institution"
        if login.admin_groups:
            auth.manage_groups = True  # the operator role goes to these groups
            auth.auth_state_groups_key = f"oauth_user.{login.groups_claim}"
    elif login.provider == "google":
        auth.scope = ["openid", "email"]
        auth.hosted_domain = list(login.google_domains)
        # With one hosted domain OAuthenticator would strip it (jane@example.org -> jane),
        # and nobody would ever match an approval: the user name is the whole verified address.
        auth.strip_domain = False
    elif login.provider == "github":
        auth.scope = ["read:user", "user:email"] + (["read:org"] if login.github_orgs or login.admin_groups else [])
        auth.allowed_organizations = set(login.github_orgs)
        if login.admin_groups:
            auth.populate_teams_in_auth_state = True
            auth.manage_groups = True  # the operator role goes to these org:team groups
            auth.auth_state_groups_key = github_teams

# Sharing (README.md, 'Sharing'): a researcher shares their server with a named colleague or a group, on
# /hub/share or by JupyterHub's API, and only with people approved for what the server holds.
c.JupyterHub.extra_user_scopes = {"shares!user", "read:users:name", "read:groups:name"}
c.ShareHandlers.share_guard = ShareGuard(gate.checker, gate, operator_groups, gate.audit)

# Each dataset granted at spawn, read-only at /data/<name> (hubstack_hub.grants, README.md 'Datasets').
c.HubstackSpawner.dataset_gate = gate
c.HubstackSpawner.audit = gate.audit  # deleted users and their kept volumes
if settings.egress.closed:  # every request through the proxy, with its researcher, in the audit log
    from hubstack_hub.egresslog import EgressAudit, server_addresses

    c.HubstackSpawner.egress_audit = EgressAudit(f"{contract.EGRESS_LOG_DIR}/access.log", gate.audit, server_addresses)
# No new server while Docker's disk is short: the hub's database and audit log keep room (README.md, 'Disk').
c.HubstackSpawner.disk_guard = DiskGuard(settings.disk, gate.audit)
if settings.disk.home_quota:  # each home a filesystem of its own, made and attached by a helper container
    from hubstack_hub.homedisk import HomeDisks

    c.HubstackSpawner.home_disks = HomeDisks(names, settings.disk.home_quota, names.image("hub"))

# Metrics (README.md, 'Metrics'): /hub/metrics for the token of the prometheus service alone
# (hubstack_hub.metrics), with each user server's CPU and memory and each home's size in it
# (hubstack_hub.usage), gathered in the background once the hub has started.
metrics_services, metrics_roles = metrics.start(names, metrics_token)
services += metrics_services
roles += metrics_roles
if not metrics_token:
    print("hubstack: no metrics token (`hubstack secrets init` makes it): /hub/metrics has no reader", file=sys.stderr)
template_vars["hubstack_datasets"] = gate.home  # called with the user: their datasets on the home page
c.JupyterHub.template_vars = template_vars
c.JupyterHub.services = services
c.JupyterHub.load_roles = roles
