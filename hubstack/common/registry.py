"""Every setting of a hubstack instance: the one table.

Each setting has its default, one line of help, its section, and the
containers that read it (besides the CLI, which reads them all). From this
table come the defaults `load()` applies, the unknown-setting check,
`.env.example` and the README's configuration table (`python3 -m
hubstack.common.registry --env-example | --readme-table`); unit tests check
the committed files and compose.yml's environment lists against it.
"""

import sys
from dataclasses import dataclass

from .contract import TLS_CHAIN, TLS_FOLDER, TLS_KEY

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
HUB, TLS, EGRESS = "hub", "tls", "egress"  # Compose services that read settings


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    section: str
    read_by: tuple = (HUB,)  # containers that get it from compose.yml; () = the CLI only


SECTIONS = {
    "instance": "The instance",
    "login": 'Production log-in (DEV_MODE=0); see README.md, "Going to production"',
    "access": "The access check after log-in",
    "limits": 'What one user server may use (README.md, "Limits")',
    "egress": 'Where user servers may connect (README.md, "Egress")',
    "https": 'HTTPS (README.md, "HTTPS")',
    "backup": 'Backups (README.md, "Backups")',
    "build": "Building the images",
}


def _section(section, read_by, *rows):
    return [Setting(name, default, help, section, read_by) for name, default, help in rows]


SETTINGS = (
    *_section(
        "instance",
        (HUB,),
        ("HUBSTACK_NAME", "hubstack", "prefix of every container, image, volume and network of this instance"),
        ("HUBSTACK_PORT", "8000", "host port the hub is published on"),
        ("HUBSTACK_BIND", "127.0.0.1", "host address the hub is published on (0.0.0.0: every interface)"),
        (
            "HUBSTACK_TITLE",
            "",
            "the hub's name on its pages (empty: hubstack and HUBSTACK_NAME); see README.md, 'Pages'",
        ),
        (
            "DEV_MODE",
            "0",
            "1: any user name logs in (JupyterHub's dummy authenticator), loopback only; `hubstack up --dev` sets it",
        ),
        ("HUBSTACK_DEV_PASSWORD", "", "dev mode: one shared password (8+ characters) for everyone instead of none"),
        (
            "HUBSTACK_ADOPT_DEV_DATA",
            "0",
            "1, for one production start: take over this instance's data made in dev mode (check its users first: in dev mode anyone could log in as anyone)",
        ),
        (
            "HUBSTACK_ALLOW_INSECURE_DEV",
            "0",
            "1: allow dev mode on a non-loopback bind (never on a network you do not trust)",
        ),
        (
            "HUBSTACK_SECRETS_DIR",
            "./secrets",
            "folder of secret files (mode 600, see secrets.example/), relative to the checkout; never put secrets in .env",
        ),
    ),
    *_section(
        "login",
        (HUB,),
        ("HUBSTACK_OAUTH_PROVIDER", "", "google, github or oidc: who proves the user's identity"),
        (
            "OAUTH_CLIENT_ID",
            "",
            "client id of the OAuth app registered with the provider (its secret: secrets/oauth_client_secret)",
        ),
        ("OAUTH_CALLBACK_URL", "", "https://<public name>/hub/oauth_callback, as registered with the provider"),
        (
            "OAUTH2_AUTHORIZE_URL",
            "",
            "oidc: the provider's authorization endpoint (browser-facing; http only on loopback)",
        ),
        ("OAUTH2_TOKEN_URL", "", "oidc: the provider's token endpoint (http only on loopback or the stack's network)"),
        (
            "OAUTH2_USERDATA_URL",
            "",
            "oidc: the provider's userinfo endpoint (http only on loopback or the stack's network)",
        ),
        ("HUBSTACK_OIDC_SCOPE", "openid email", "oidc: scopes to request (must include email)"),
        ("HUBSTACK_OIDC_GROUPS_CLAIM", "groups", "oidc: the userinfo claim that lists the user's groups"),
        ("HUBSTACK_GITHUB_ORGS", "", "github: only members of these organisations or org:team (comma-separated)"),
        ("HUBSTACK_GOOGLE_DOMAINS", "", "google: only accounts of these hosted domains (comma-separated)"),
        (
            "HUBSTACK_ADMIN_USERS",
            "",
            "e-mail addresses of the hub's operators (comma-separated): they manage users and servers, never open a researcher's; they need approval too",
        ),
        (
            "HUBSTACK_ADMIN_GROUPS",
            "",
            "oidc/github: groups (github: org:team) whose members are operators, like HUBSTACK_ADMIN_USERS",
        ),
        (
            "HUBSTACK_ADMIN_FULL_ACCESS",
            "0",
            "1: operators get JupyterHub's full admin role (open every server, act as anyone); audited at every start",
        ),
    ),
    *_section(
        "access",
        (HUB,),
        (
            "HUBSTACK_ACCESS_SOURCES",
            "",
            "approval sources asked in order, any approval lets in: registry, list or registry,list",
        ),
        ("HUBSTACK_REGISTRY_URL", "", "base URL of the DACO-style registry (GET <base>/search?...)"),
        (
            "HUBSTACK_REGISTRY_AUTH",
            "oauth1-hmac-sha1",
            "how registry requests are signed: oauth1-hmac-sha1, oauth1-plaintext (the original's) or bearer",
        ),
        (
            "HUBSTACK_REGISTRY_CONSUMER_KEY",
            "",
            "oauth1: the consumer key (its secret: secrets/registry_consumer_secret)",
        ),
        ("HUBSTACK_REGISTRY_TIMEOUT", "5", "seconds before an unanswered registry counts as unavailable"),
        ("HUBSTACK_REGISTRY_REQUIRE_CLOUD_ACCESS", "0", "1: also require the registry record's cloud-access flag"),
        (
            "HUBSTACK_ACCESS_DIR",
            "./access",
            "folder of the approval list approvals.csv (see access/README.md), relative to the checkout",
        ),
        ("HUBSTACK_ACCESS_CACHE", "180", "seconds a past approval carries a user over a registry outage"),
        ("HUBSTACK_ACCESS_RECHECK", "300", "seconds between re-checks of logged-in users (auth_refresh_age)"),
        (
            "HUBSTACK_ACCESS_OUTAGE_GRACE",
            "3600",
            "seconds past HUBSTACK_ACCESS_CACHE that running servers ride out an approval source that cannot answer; then they stop (off: ride out any outage)",
        ),
        ("HUBSTACK_ACCESS_APPLY_URL", "", "where the denial page sends people to apply for access"),
        (
            "HUBSTACK_AUDIT_ROTATE_MB",
            "10",
            "the audit log (audit/access.jsonl on the hub data volume) starts a new file at this size, in MiB",
        ),
        (
            "HUBSTACK_AUDIT_KEEP",
            "50",
            "rotated audit files kept (access.jsonl.1 is the newest); older ones are removed",
        ),
    ),
    *_section(
        "access",
        (HUB,),
        (
            "HUBSTACK_COOKIE_MAX_AGE_DAYS",
            "1",
            "days a log-in cookie is valid (JupyterHub's cookie_max_age_days; JupyterHub's default is 14)",
        ),
        (
            "HUBSTACK_TOKEN_MAX_AGE_DAYS",
            "30",
            "longest lifetime of an API token a user creates (one asked for without an expiry gets this one)",
        ),
    ),
    *_section(
        "limits",
        (HUB,),
        (
            "HUBSTACK_USER_MEM_LIMIT",
            "2G",
            "memory of one user server (kernels included), e.g. 2G or 512M; no swap beyond it",
        ),
        ("HUBSTACK_USER_CPU_LIMIT", "1", "CPU cores one user server may use, e.g. 1 or 0.5"),
        ("HUBSTACK_USER_PIDS_LIMIT", "512", "processes and threads one user server may run (stops fork bombs)"),
        (
            "HUBSTACK_IDLE_TIMEOUT",
            "3600",
            "seconds without activity before a user server is stopped (0: never); its volume stays",
        ),
        (
            "HUBSTACK_SPAWN_CONCURRENCY",
            "2",
            "servers starting at once; more researchers wait in line, first come first served",
        ),
        ("HUBSTACK_MAX_SERVERS", "0", "user servers running at once (0: no limit)"),
        (
            "HUBSTACK_TMP_SIZE",
            "1G",
            "size of /tmp in a user server (in memory: counts toward HUBSTACK_USER_MEM_LIMIT); the rest of its root is read-only",
        ),
        (
            "HUBSTACK_HOME_QUOTA",
            "",
            "size of each home, e.g. 10G, enforced by the kernel (a filesystem of its own, reserved in full on Docker's disk); empty or off: no quota",
        ),
        (
            "HUBSTACK_MIN_FREE_DISK",
            "5G",
            "new servers are refused while Docker's disk has less free, e.g. 5G or 10%, so the hub's database and audit log keep room (0: never)",
        ),
    ),
    *_section(
        "egress",
        (HUB, EGRESS),
        (
            "HUBSTACK_EGRESS",
            "",
            "closed: user servers reach only the hub and the proxy (the default outside dev mode); open: the internet (dev mode's default)",
        ),
        (
            "HUBSTACK_EGRESS_ALLOW",
            "",
            "closed: host names user servers may reach over HTTP(S) through the proxy, e.g. pypi.org,.example.org (empty: none)",
        ),
        ("HUBSTACK_EGRESS_DNS", "", "closed: resolvers the proxy uses for allowed names (empty: the host's)"),
        (
            "HUBSTACK_USER_SUBNETS",
            "10.213.0.0/16",
            "closed: private range cut into one /28 network per running user server",
        ),
    ),
    *_section(
        "https",
        (HUB, TLS),
        (
            "HUBSTACK_HTTPS",
            "off",
            f"off, acme (automatic certificates), files (secrets/{TLS_FOLDER}/{TLS_CHAIN} and {TLS_KEY}) or self-signed; off outside dev mode only on a loopback bind",
        ),
        (
            "HUBSTACK_DOMAIN",
            "",
            "the public DNS name researchers type, e.g. hub.example.org (self-signed: localhost if empty)",
        ),
        ("HUBSTACK_ACME_EMAIL", "", "acme: the operator's e-mail address, for the CA's expiry and account notices"),
        (
            "HUBSTACK_ACME_CA",
            LETS_ENCRYPT,
            "acme: the CA's ACME directory URL (default: Let's Encrypt's production one)",
        ),
        ("HUBSTACK_HTTPS_PORT", "443", "host port of HTTPS, on HUBSTACK_BIND"),
        (
            "HUBSTACK_HTTP_PORT",
            "80",
            "host port of plain HTTP (redirects to HTTPS; ACME's HTTP challenge), on HUBSTACK_BIND",
        ),
    ),
    *_section(
        "https",
        (HUB,),
        (
            "HUBSTACK_ACME_CA_ROOT",
            "",
            "acme: PEM file of a private ACME CA's root to trust, relative to the checkout (empty: the system's roots)",
        ),
    ),
    *_section(
        "https",
        (TLS,),
        ("HUBSTACK_TLS_RENEW_INTERVAL", "600", "seconds between the terminator's checks for certificates to renew"),
        (
            "HUBSTACK_TLS_RENEW_WINDOW",
            "0.3333",
            "renew a certificate when this fraction of its lifetime is left (0 < x <= 1)",
        ),
    ),
    *_section(
        "backup",
        (),
        (
            "HUBSTACK_BACKUP_REPOSITORY",
            "",
            "where `hubstack backup` writes: a folder (absolute, or ./relative to the checkout) or a restic URL (sftp:, rest:, s3:, b2:, azure:, gs:, swift:); its password: secrets/backup_password",
        ),
        (
            "HUBSTACK_BACKUP_KEEP",
            "daily=7,weekly=4,monthly=6",
            "snapshots kept after each backup, per home and for the hub (restic forget --keep-<unit>; units last, hourly, daily, weekly, monthly, yearly)",
        ),
    ),
    *_section(
        "build",
        (),
        (
            "HUBSTACK_BASE_IMAGE",
            "debian:bookworm-slim",
            "Debian bookworm image every image is built FROM (made with mmdebstrap when no registry answers)",
        ),
        (
            "HUBSTACK_WHEEL_CACHE",
            "",
            "folder of downloaded wheels shared by every checkout and instance on this host (empty: ~/.cache/hubstack/wheels)",
        ),
    ),
)
KNOWN = {s.name: s for s in SETTINGS}
DEFAULTS = {s.name: s.default for s in SETTINGS}


def read_by(service):
    """Names of the settings a container reads (compose.yml passes exactly these)."""
    return [s.name for s in SETTINGS if service in s.read_by]


def env_example():
    """The text of .env.example."""
    lines = [
        "# Copy to .env and change what you need. The environment wins over this file.",
        "# Every setting is checked; a wrong value stops hubstack with a one-line error.",
        "# Generated from hubstack/common/registry.py: python3 -m hubstack.common.registry --env-example",
    ]
    section = None
    for s in SETTINGS:
        if s.section != section:
            section = s.section
            lines += ["", f"# --- {SECTIONS[section]} ---"]
        lines += [f"# {s.help}", f"{s.name}={s.default}"]
    return "\n".join(lines) + "\n"


def readme_table():
    """The README's configuration table (markdown)."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "empty"
        rows.append(f"| `{s.name}` | {default} | {s.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    outputs = {"--env-example": env_example, "--readme-table": readme_table}
    if sys.argv[1:] not in ([k] for k in outputs):
        sys.exit(f"usage: python3 -m hubstack.common.registry {' | '.join(outputs)}")
    sys.stdout.write(outputs[sys.argv[1]]())
