"""JupyterHub configuration of hubstack.

Every setting comes from the environment that Compose passes in, read and
checked by hubstack.settings (the same module the `hubstack` CLI uses).
Upstream defaults are kept wherever they work.
"""

import sys

from hubstack.settings import SettingsError, load

c = get_config()  # noqa: F821

try:
    settings = load()
    settings.check_mode()
except SettingsError as err:
    # One line that says what to fix, not a traceback.
    print(f"hubstack: {err}", file=sys.stderr)
    sys.exit(1)

DATA = "/srv/jupyterhub"  # the hub data volume: database and cookie secret

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
c.JupyterHub.template_vars = {"hubstack_instance": settings.name}

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
