"""JupyterHub configuration of hubstack.

Every setting comes from the environment that Compose passes in, read and
checked by hubstack.settings (the same module the `hubstack` CLI uses).
Upstream defaults are kept wherever they work.
"""

import sys

from hubstack.settings import SettingsError, load

c = get_config()  # noqa: F821

SECRETS = "/run/secrets/hubstack"  # HUBSTACK_SECRETS_DIR, read-only
ACCESS = "/srv/hubstack/access"  # HUBSTACK_ACCESS_DIR (approvals.csv), read-only
DATA = "/srv/jupyterhub"  # the hub data volume: database, cookie secret, audit log

try:
    settings = load()
    login = settings.check_mode(SECRETS, ACCESS)  # None in dev mode
except SettingsError as err:
    # One line that says what to fix, not a traceback.
    print(f"hubstack: {err}", file=sys.stderr)
    sys.exit(1)

# The hub listens on all interfaces of its container; user servers reach it by
# its Compose service name on the instance's network.
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "hub"
c.JupyterHub.db_url = f"sqlite:///{DATA}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{DATA}/jupyterhub_cookie_secret"
# User servers outlive a hub restart (`hubstack reset`, an upgrade).
c.JupyterHub.cleanup_servers = False
# Look and feel: share/templates (live edits, see `hubstack shell`) first.
c.JupyterHub.template_paths = ["/srv/hubstack/share/templates", "/srv/hubstack/templates"]
c.JupyterHub.template_vars = {"hubstack_instance": settings.name, "dev_mode": settings.dev_mode}

c.JupyterHub.spawner_class = "hubstack_hub.spawner.HubstackSpawner"
c.HubstackSpawner.instance = settings.name
c.DockerSpawner.image = settings.image("notebook")
c.DockerSpawner.pull_policy = "never"  # images are built here; no registry
c.DockerSpawner.network_name = settings.network
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = settings.user_prefix
c.DockerSpawner.remove = True
# The whole home persists, in a volume named with DockerSpawner's escaping
# ({username}), so e-mail addresses work.
c.DockerSpawner.volumes = {settings.home_volume_template: "/home/jovyan"}
c.DockerSpawner.notebook_dir = "/home/jovyan"

if settings.dev_mode:
    if settings.dev_password:
        c.JupyterHub.authenticator_class = "shared-password"
        c.SharedPasswordAuthenticator.user_password = settings.dev_password
    else:
        c.JupyterHub.authenticator_class = "dummy"
    c.Authenticator.allow_all = True
else:
    # Production: identity from OAuth, then the access check (hubstack_hub.auth).
    # No allow_all: JupyterHub would skip the access check.
    from hubstack_hub.access import AUDIT_LOG, build_checker
    from hubstack_hub.auth import CLASSES
    from hubstack_hub.identity import github_teams

    authenticator = CLASSES[login.provider]
    c.JupyterHub.authenticator_class = authenticator
    auth = c[authenticator.__name__]
    auth.client_id = login.client_id
    auth.client_secret = login.client_secret
    auth.oauth_callback_url = login.callback_url
    auth.admin_users = set(login.admin_users)
    auth.any_allow_config = True  # the access check is the allow rule
    auth.access_checker = build_checker(login, AUDIT_LOG)
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
            auth.manage_groups = True
            auth.auth_state_groups_key = f"oauth_user.{login.groups_claim}"
            auth.admin_groups = set(login.admin_groups)
    elif login.provider == "google":
        auth.scope = ["openid", "email"]
        auth.hosted_domain = list(login.google_domains)
    elif login.provider == "github":
        auth.scope = ["read:user", "user:email"] + (["read:org"] if login.github_orgs or login.admin_groups else [])
        auth.allowed_organizations = set(login.github_orgs)
        if login.admin_groups:
            auth.populate_teams_in_auth_state = True
            auth.manage_groups = True
            auth.auth_state_groups_key = github_teams
            auth.admin_groups = set(login.admin_groups)
