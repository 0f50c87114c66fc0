"""Names, paths, labels and ports that cross the line between host and containers.

Every other module, on either side, takes them from here: the CLI names
what it creates with `Names`, the hub mounts what `Names` calls the same
thing, and paths inside the images reach the Dockerfiles as build arguments
(`BUILD_ARGS`). compose.yml repeats some of them, as data; a unit test holds
it to this module.
"""

from dataclasses import dataclass

# -- the hub container ------------------------------------------------------------
HUB_SERVICE = "hub"  # Compose service name: user servers and the tls service reach the hub by it
HUB_PORT = 8000  # the hub's proxy, inside the container; published on HUBSTACK_PORT
HUB_API_PORT = 8081  # the hub itself (REST API, metrics) behind the proxy; on the instance's network only
HUB_HOME = "/srv/hubstack"  # configuration, templates and code of hubstack in the hub image
HUB_CONFIG = f"{HUB_HOME}/jupyterhub_config.py"
LIB = f"{HUB_HOME}/lib"  # on PYTHONPATH in the hub and tls images: this package (and hubstack_hub)
HUB_TEMPLATES = f"{HUB_HOME}/templates"
SHARE_FOLDER = "share"  # in the checkout: templates tried live, mounted at SHARE_MOUNT
SHARE_MOUNT = f"{HUB_HOME}/share"
SHARE_LOGO = "logo.png"  # in share/: the instance's logo on every page (read when the hub starts)
WELCOME_TEMPLATE = "hubstack-welcome.html"  # in share/templates: the operator's text on the log-in and denial pages
ACCESS_MOUNT = f"{HUB_HOME}/access"  # HUBSTACK_ACCESS_DIR, read-only
SECRETS_MOUNT = "/run/secrets/hubstack"  # HUBSTACK_SECRETS_DIR, read-only (hub; tls in files mode)
HUB_DATA = "/srv/jupyterhub"  # the hub data volume: database, dev-mode cookie secret, audit log
HUB_DATABASE = f"{HUB_DATA}/jupyterhub.sqlite"
AUDIT_LOG = f"{HUB_DATA}/audit/access.jsonl"
DATA_MODE_FILE = f"{HUB_DATA}/hubstack-mode"  # "dev" or "production": the mode the hub's data was made in
AUDIT_FAILED = "hubstack: the audit log could not be written"  # in the hub's log; `hubstack doctor` looks for it
HEALTH_PATH = "/hub/health"
METRICS_PATH = "/hub/metrics"  # Prometheus text format; needs a token with the read:metrics scope

# -- user servers -----------------------------------------------------------------
ENV_MOUNT = "/opt/conda"  # the shared environment, read-only
ENV_VERSION_FILE = ".hubstack-env-version"  # in the environment volume: which image filled it
ENV_RECIPE = "/opt/hubstack-environment"  # in the environment image: its lock and fill-environment
USER_HOME = "/home/jovyan"  # the user's own volume
USER_UID = 1000
DATA_MOUNT = "/data"  # each granted dataset at /data/<name>, read-only
DATA_README = f"{DATA_MOUNT}/README"  # in the image: a link to DATASETS_NOTE
SHARED_MOUNT = "/shared"  # each group folder of the user's groups at /shared/<group>, read-write
USER_TMP = "/tmp"  # in memory, HUBSTACK_TMP_SIZE; the rest outside the home is read-only
DATASETS_NOTE = (
    f"{USER_TMP}/hubstack-datasets.txt"  # written at start from DATASETS_ENV: what is mounted, what not, why
)
DATASETS_ENV = "HUBSTACK_DATASETS_NOTE"
PROFILE_ENV = "HUBSTACK_PROFILE"  # in a user server: the name of the profile it was started with

# -- the database sidecar of a profile with database = true (README.md, "Profiles") ------
# MariaDB in the user server's network namespace: 127.0.0.1:DATABASE_PORT from the notebook, nowhere else.
DATABASE_PORT = 3306
DATABASE_DATA = "/var/lib/mysql"  # the user's database volume, in the sidecar
DATABASE_USER = DATABASE_NAME = "jovyan"  # the researcher's account and database
DATABASE_PASSWORD_ENV = "HUBSTACK_DB_PASSWORD"  # in the sidecar (database/hubstack-db): made new at every start
DATABASE_URL_ENV = "DATABASE_URL"  # in the server: mysql+pymysql://... for SQLAlchemy (and MYSQL_* for pymysql)
DATABASE_READY = "hubstack-db: ready"  # the sidecar's log line once MariaDB answers with the account set

# -- container logs: every container of an instance logs to capped, rotated files ------
LOG_DRIVER = "json-file"  # `docker logs` and `hubstack logs` read it
LOG_MAX_SIZE, LOG_MAX_FILES = "10m", "3"  # at most 30 MB per container

# -- home quotas (HUBSTACK_HOME_QUOTA): each home an ext4 image of its own, on a loop device ---------
HOME_DISKS_MOUNT = "/home-disks"  # in the helper container: the volume of the image files
OLD_HOME_MOUNT = "/old-home"  # in the helper container: a home from before the quota, copied in once

# -- the egress container (squid and a sinkhole DNS; README.md, "Egress") ------------
EGRESS_SERVICE = "egress"  # user servers reach the proxy by this name on their own network
EGRESS_PROFILE = "egress"  # the Compose profile of the egress service
PROXY_PORT = 3128
DNS_PORT = 53
EGRESS_LOG_DIR = "/var/log/hubstack-egress"  # the egress log volume: access.log (squid), dns.log (sinkhole)
USER_BRIDGE_PREFIX = "hsu"  # Linux bridge names of per-user networks: hsu + 12 hex digits

# -- the tls container (Caddy) ------------------------------------------------------
TLS_DATA = "/data"  # Caddy's certificates, keys, ACME account: the tls data volume
TLS_CA_ROOT = "/etc/hubstack-tls/acme-ca-root.pem"  # HUBSTACK_ACME_CA_ROOT, or /dev/null
NO_TLS_FILES = "./tls/no-files"  # mounted at SECRETS_MOUNT in the tls container unless HUBSTACK_HTTPS=files
TLS_PROFILE = "tls"  # the Compose profile of the tls service

# -- the backup container (`hubstack backup`, `hubstack restore`; README.md, "Backups") ------
# Its paths are the paths inside the snapshots: changing one breaks the restore of older backups.
BACKUP_HUB = "/backup/hub"  # a staged copy of the hub data volume (the database by SQLite's online backup)
BACKUP_CHECKOUT = "/backup/checkout"  # the checkout's .env, access/ and (--with-secrets) secrets/
BACKUP_HOMES = "/backup/homes"  # each home volume at <BACKUP_HOMES>/<escaped user name>, read-only
BACKUP_GROUPS = "/backup/groups"  # each group folder at <BACKUP_GROUPS>/<group>, in the hub's snapshot
BACKUP_DATABASES = "/backup/databases"  # each database volume likewise, in the snapshot of the user's home
BACKUP_HUB_VOLUME = "/volumes/hub-data"  # the hub data volume, read-only, staged into BACKUP_HUB
RESTORE_TARGET = "/restore"  # restic writes a snapshot's /backup/... under it, where the volumes are mounted
BACKUP_KEYS = "/run/secrets/hubstack-backup"  # the repository's password file (and the backend's credentials)
BACKUP_REPOSITORY = "/repository"  # a repository in a host folder
BACKUP_CACHE = "/cache"  # restic's cache, a volume of the instance

# -- secret files, in HUBSTACK_SECRETS_DIR (see secrets.example/) -------------------
CLIENT_SECRET = "oauth_client_secret"
CONSUMER_SECRET = "registry_consumer_secret"
BEARER_TOKEN = "registry_token"
COOKIE_SECRET = "jupyterhub_cookie_secret"  # made by `hubstack secrets init`: signs log-in cookies
CRYPT_KEY = "jupyterhub_crypt_key"  # made by `hubstack secrets init`: encrypts auth state
METRICS_TOKEN = "metrics_token"  # made by `hubstack secrets init`: Prometheus reads METRICS_PATH with it, nothing else
GENERATED_SECRETS = (COOKIE_SECRET, CRYPT_KEY, METRICS_TOKEN)
BACKUP_PASSWORD = "backup_password"  # made by `hubstack backup init`: opens the restic repository
BACKUP_ENVIRONMENT = "backup_environment"  # optional: KEY=VALUE lines, the restic backend's credentials
# HUBSTACK_HTTPS=files: the certificate and its key, in a folder of their own inside the
# secrets folder, the only one the tls container is given (it never sees the other secrets).
TLS_FOLDER = "tls"
TLS_CHAIN, TLS_KEY = "tls_fullchain.pem", "tls_privkey.pem"
APPROVAL_LIST = "approvals.csv"  # in HUBSTACK_ACCESS_DIR
DATASETS_FILE = "datasets.toml"  # in HUBSTACK_ACCESS_DIR: the datasets and what grants each
PROFILES_FILE = "profiles.toml"  # in HUBSTACK_ACCESS_DIR: the server profiles researchers choose from
GROUPS_FILE = "groups.toml"  # in HUBSTACK_ACCESS_DIR: the operator's groups of researchers

# -- labels on everything an instance makes ----------------------------------------
LABEL_INSTANCE = "hubstack.instance"
LABEL_ROLE = "hubstack.role"
LABEL_USER = "hubstack.user"
LABEL_SERVER = "hubstack.server"  # on a user server: its name in the hub ("" for the default server)
LABEL_ENV_VERSION = "hubstack.env.version"
LABEL_DATASET = "hubstack.dataset"  # on the volume that binds a dataset's host folder
LABEL_DATASETS = "hubstack.datasets"  # on a user server: the datasets mounted in it, comma-separated
LABEL_GROUP = "hubstack.group"  # on a group folder's volume: the group's name
LABEL_PROFILE = "hubstack.profile"  # on a user server and its database sidecar: the profile it was started with
LABEL_INPUTS = "hubstack.inputs"  # on images: digest of what they were built from
LABEL_BENCHMARK = "hubstack.benchmark"


class Role:
    """Values of LABEL_ROLE."""

    HUB = "hub"
    TLS = "tls"
    HUB_DATA = "hub-data"
    TLS_DATA = "tls-data"
    HOME = "home"
    USER_SERVER = "user-server"
    ENVIRONMENT = "environment"
    DATASET = "dataset"
    EGRESS = "egress"
    EGRESS_LOG = "egress-log"
    USER_NETWORK = "user-network"
    HOME_DISKS = "home-disks"  # the volume of every home's image file
    HOME_DISK = "home-disk"  # a home's filesystem on its loop device, while its server runs
    HOME_DISK_HELPER = "home-disk-helper"
    BENCHMARK = "benchmark"
    BACKUP = "backup"  # the throwaway container of `hubstack backup` and `hubstack restore`
    BACKUP_CACHE = "backup-cache"
    TEST_SERVICE = "test-service"
    DATABASE = "database"  # a user's database volume (profiles with database = true)
    DATABASE_SIDECAR = "database-sidecar"  # MariaDB beside a user server, in its network namespace
    GROUP_FOLDER = "group-folder"  # a group's shared folder (groups.toml, folder = true)
    USAGE = "usage"  # the hub's short-lived container that measures the home volumes (hubstack_hub.usage)


# Images shared by every instance on one host (they hold nothing of an instance).
LOCAL_BASE = "hubstack-debian:bookworm"  # made with mmdebstrap where no registry answers
PYTHON_REPOSITORY = "hubstack-python"  # tagged with the base image's short id
CURRENT = "current"  # tag of the environment image whose copy in a volume is complete

# Paths inside the images, given to every Dockerfile as build arguments.
BUILD_ARGS = {
    "HUB_HOME": HUB_HOME,
    "HUB_DATA": HUB_DATA,
    "HUB_CONFIG": HUB_CONFIG,
    "LIB": LIB,
    "SECRETS_MOUNT": SECRETS_MOUNT,
    "ENV_MOUNT": ENV_MOUNT,
    "ENV_RECIPE": ENV_RECIPE,
    "USER_HOME": USER_HOME,
    "USER_UID": str(USER_UID),
    "DATA_MOUNT": DATA_MOUNT,
    "SHARED_MOUNT": SHARED_MOUNT,
    "DATA_README": DATA_README,
    "DATASETS_NOTE": DATASETS_NOTE,
    "DATABASE_PORT": str(DATABASE_PORT),
    "DATABASE_DATA": DATABASE_DATA,
    "DATABASE_USER": DATABASE_USER,
    "EGRESS_LOG_DIR": EGRESS_LOG_DIR,
    "PROXY_PORT": str(PROXY_PORT),
    "TLS_DATA": TLS_DATA,
    "TLS_CA_ROOT": TLS_CA_ROOT,
}


def short_id(image_id):
    """'sha256:4f1c...' -> '4f1c...' (12 hex digits): names an image's version in tags and volumes."""
    return image_id.split(":")[-1][:12]


@dataclass(frozen=True)
class Names:
    """Everything of one instance (HUBSTACK_NAME), named once."""

    instance: str

    @property
    def network(self):
        return f"{self.instance}-net"

    @property
    def hub_container(self):
        return f"{self.instance}-{HUB_SERVICE}"

    @property
    def hub_data_volume(self):
        return f"{self.instance}-hub-data"

    @property
    def tls_container(self):
        return f"{self.instance}-tls"

    @property
    def tls_data_volume(self):
        return f"{self.instance}-tls-data"

    @property
    def user_prefix(self):
        """DockerSpawner's prefix: a user's container is <prefix>-<escaped user name>."""
        return f"{self.instance}-user"

    @property
    def home_volume_template(self):
        """DockerSpawner fills {username} with its escaped user name."""
        return f"{self.instance}-home-{{username}}"

    @property
    def home_disks_volume(self):
        """With HUBSTACK_HOME_QUOTA: the image files of every home (<escaped user>.ext4)."""
        return f"{self.instance}-homedisks"  # never a home volume: those are <instance>-home-...

    def home_disk_volume(self, escaped_user):
        """With HUBSTACK_HOME_QUOTA: the user's home filesystem, a volume of its loop device."""
        return f"{self.instance}-homedisk-{escaped_user}"

    @property
    def egress_container(self):
        return f"{self.instance}-{EGRESS_SERVICE}"

    @property
    def egress_log_volume(self):
        return f"{self.instance}-egress-log"

    def home_volume(self, escaped_user):
        return self.home_volume_template.format(username=escaped_user)

    @property
    def backup_container(self):
        return f"{self.instance}-backup"

    @property
    def backup_cache_volume(self):
        return f"{self.instance}-backup-cache"

    @property
    def database_volume_template(self):
        """Like the home's: DockerSpawner's escaped user name in place of {username}."""
        return f"{self.instance}-db-{{username}}"

    def database_volume(self, escaped_user):
        return self.database_volume_template.format(username=escaped_user)

    def group_volume(self, group):
        """A group's shared folder (group: a safe name, hubstack.common.groups)."""
        return f"{self.instance}-group-{group}"

    def user_network(self, escaped_user):
        """A user server's own network when egress is closed (escaped_user: DockerSpawner's escaping)."""
        return f"{self.instance}-net-{escaped_user}"

    def dataset_volume(self, dataset):
        """The volume that binds a folder dataset's host folder (made by the CLI, mounted by the hub)."""
        return f"{self.instance}-dataset-{dataset}"

    def image(self, role):
        """An instance image by its role: hub-core, hub, notebook, environment, tls, ..."""
        return f"{self.instance}-{role}"

    @property
    def current_environment(self):
        return f"{self.image('environment')}:{CURRENT}"

    def env_volume(self, version):
        """The shared environment volume filled from the environment image of this short id."""
        return f"{self.instance}-env-{version}"

    def labels(self, role=None, **more):
        """Labels of something of this instance; more: user=..., env_version=... (LABEL_<KEY>)."""
        labels = {LABEL_INSTANCE: self.instance}
        if role:
            labels[LABEL_ROLE] = role
        for key, value in more.items():
            labels[globals()[f"LABEL_{key.upper()}"]] = value
        return labels

    def label_filter(self, role=None, **more):
        """A Docker list filter for what labels(role, **more) marks."""
        return {"label": [f"{k}={v}" for k, v in self.labels(role, **more).items()]}
