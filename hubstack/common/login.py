"""Production log-in settings: who proves identity (OAuth) and who approves access.

Checked as a whole before anything starts, on the host by `hubstack up` and
in the hub by jupyterhub_config.py, so a half-filled configuration stops with
one line that names the setting, and nothing falls back to an open log-in.
Part of hubstack.common: the hub image has it too.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import parse
from .contract import APPROVAL_LIST, BEARER_TOKEN, CLIENT_SECRET, CONSUMER_SECRET, GENERATED_SECRETS, METRICS_TOKEN
from .parse import SettingsError
from .registry import DEFAULTS

PROVIDERS = ("google", "github", "oidc")
SOURCES = ("registry", "list")
REGISTRY_AUTH = ("oauth1-hmac-sha1", "oauth1-plaintext", "bearer")


@dataclass(frozen=True)
class Login:
    provider: str
    client_id: str
    client_secret: str
    callback_url: str
    authorize_url: str
    token_url: str
    userdata_url: str
    scope: tuple
    groups_claim: str
    github_orgs: frozenset
    google_domains: tuple
    admin_users: frozenset
    admin_groups: frozenset
    admin_full_access: bool
    sources: tuple
    registry_url: str
    registry_auth: str
    registry_key: str
    registry_secret: str  # OAuth1 consumer secret or bearer token
    registry_timeout: float
    require_cloud_access: bool
    approval_list: Path | None
    cache_seconds: int
    recheck_seconds: int
    apply_url: str
    cookie_secret: str
    crypt_key: str
    metrics_token: str
    audit_rotate_bytes: int
    audit_keep: int
    outage_grace: int | None  # None: ride out any outage


def read_secret(secrets_dir, name, shown_dir, why):
    """A secret's value from its file; refuses missing, empty and world-readable files."""
    path = Path(secrets_dir) / name
    shown = f"{shown_dir}/{name}"
    try:
        mode = path.stat().st_mode
        value = path.read_text().strip()
    except FileNotFoundError:
        raise SettingsError(
            f"missing secret {shown}: {why}; put it in that file with mode 600 (see secrets.example/)"
        ) from None
    except OSError as err:
        raise SettingsError(f"cannot read secret {shown}: {err.strerror}") from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise SettingsError(f"secret {shown} is readable by anyone on the machine: run `chmod 600 {shown}`")
    if mode & (stat.S_IRWXG | stat.S_IXOTH):
        raise SettingsError(
            f"secret {shown} can be read by its group too (mode {stat.S_IMODE(mode):o}): run `chmod 600 {shown}`"
        )
    if not value:
        raise SettingsError(f"secret {shown} is empty: {why}")
    return value


def read_generated_secret(secrets_dir, name, shown_dir):
    """The cookie secret, crypt key or metrics token: 64 hex digits, made by `hubstack secrets init`."""
    value = read_secret(secrets_dir, name, shown_dir, "create it with `hubstack secrets init`")
    if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise SettingsError(
            f"secret {shown_dir}/{name} is not 64 hex digits: move it away and run `hubstack secrets init`"
        )
    return value


def dev_metrics_token(secrets_dir, shown_dir):
    """Dev mode: the metrics token if `hubstack secrets init` made it, else None (production requires it)."""
    if not (Path(secrets_dir) / METRICS_TOKEN).exists():
        return None
    return read_generated_secret(secrets_dir, METRICS_TOKEN, shown_dir)


def load_login(raw, secrets_dir, access_dir):
    """The checked production log-in from raw settings (hubstack.settings.load(...).raw)."""
    raw = {**DEFAULTS, **raw}
    shown_secrets = raw["HUBSTACK_SECRETS_DIR"].rstrip("/") or "."
    provider = raw["HUBSTACK_OAUTH_PROVIDER"].strip().lower()
    if not provider:
        raise SettingsError(
            "production log-in is not configured: set HUBSTACK_OAUTH_PROVIDER (google, github or oidc) "
            "and its OAuth settings, or DEV_MODE=1 (or --dev) for a local development hub"
        )
    if provider not in PROVIDERS:
        raise SettingsError(f"HUBSTACK_OAUTH_PROVIDER={provider!r} is not known: use google, github or oidc")
    client_id = raw["OAUTH_CLIENT_ID"].strip()
    if not client_id:
        raise SettingsError(
            "OAUTH_CLIENT_ID is not set: use the client id of the OAuth app registered with the provider"
        )
    callback_url = parse.url("OAUTH_CALLBACK_URL", raw["OAUTH_CALLBACK_URL"], browser=True)
    if not urlsplit(callback_url).path.endswith("/hub/oauth_callback"):
        raise SettingsError(f"OAUTH_CALLBACK_URL={callback_url!r} must end in /hub/oauth_callback")
    client_secret = read_secret(secrets_dir, CLIENT_SECRET, shown_secrets, "the OAuth client secret from the provider")
    cookie_secret, crypt_key, metrics_token = (
        read_generated_secret(secrets_dir, name, shown_secrets) for name in GENERATED_SECRETS
    )
    oidc = provider == "oidc"
    authorize_url = parse.url("OAUTH2_AUTHORIZE_URL", raw["OAUTH2_AUTHORIZE_URL"], required=oidc, browser=True)
    token_url = parse.url("OAUTH2_TOKEN_URL", raw["OAUTH2_TOKEN_URL"], required=oidc)
    userdata_url = parse.url("OAUTH2_USERDATA_URL", raw["OAUTH2_USERDATA_URL"], required=oidc)
    scope = tuple(raw["HUBSTACK_OIDC_SCOPE"].split())
    if oidc and "email" not in scope:
        raise SettingsError(
            f"HUBSTACK_OIDC_SCOPE={' '.join(scope)!r} lacks 'email': the user name is the verified e-mail"
        )
    github_orgs = frozenset(parse.items(raw["HUBSTACK_GITHUB_ORGS"]))
    google_domains = tuple(parse.items(raw["HUBSTACK_GOOGLE_DOMAINS"]))
    for key, value in (("HUBSTACK_GITHUB_ORGS", github_orgs), ("HUBSTACK_GOOGLE_DOMAINS", google_domains)):
        wanted = key.split("_")[1].lower()
        if value and provider != wanted:
            raise SettingsError(f"{key} only applies to HUBSTACK_OAUTH_PROVIDER={wanted} (now {provider}): remove it")
    admin_users = frozenset(a.lower() for a in parse.items(raw["HUBSTACK_ADMIN_USERS"]))
    for admin in admin_users:
        if "@" not in admin:
            raise SettingsError(f"HUBSTACK_ADMIN_USERS has {admin!r}: user names are e-mail addresses")
    admin_groups = frozenset(parse.items(raw["HUBSTACK_ADMIN_GROUPS"]))
    if admin_groups and provider == "google":
        raise SettingsError(
            "HUBSTACK_ADMIN_GROUPS needs a provider that reports groups (oidc, github): use HUBSTACK_ADMIN_USERS"
        )

    sources = tuple(s.lower() for s in parse.items(raw["HUBSTACK_ACCESS_SOURCES"]))
    if not sources:
        raise SettingsError(
            "HUBSTACK_ACCESS_SOURCES is not set: production needs an approval source after log-in "
            "(registry, list, or both: registry,list)"
        )
    for source in sources:
        if source not in SOURCES:
            raise SettingsError(f"HUBSTACK_ACCESS_SOURCES has {source!r}: use registry and/or list")
    registry_url = registry_auth = registry_key = registry_secret = ""
    if "registry" in sources:
        registry_url = parse.url("HUBSTACK_REGISTRY_URL", raw["HUBSTACK_REGISTRY_URL"]).rstrip("/")
        registry_auth = raw["HUBSTACK_REGISTRY_AUTH"].strip().lower()
        if registry_auth not in REGISTRY_AUTH:
            raise SettingsError(
                f"HUBSTACK_REGISTRY_AUTH={registry_auth!r} is not known: use {', '.join(REGISTRY_AUTH)}"
            )
        if registry_auth == "bearer":
            registry_secret = read_secret(secrets_dir, BEARER_TOKEN, shown_secrets, "the registry's bearer token")
        else:
            registry_key = raw["HUBSTACK_REGISTRY_CONSUMER_KEY"].strip()
            if not registry_key:
                raise SettingsError("HUBSTACK_REGISTRY_CONSUMER_KEY is not set: the registry's OAuth1 consumer key")
            registry_secret = read_secret(
                secrets_dir, CONSUMER_SECRET, shown_secrets, "the registry's OAuth1 consumer secret"
            )
    approval_list = None
    if "list" in sources:
        approval_list = Path(access_dir) / APPROVAL_LIST
        shown = f"{raw['HUBSTACK_ACCESS_DIR'].rstrip('/')}/{APPROVAL_LIST}"
        if not approval_list.is_file():
            raise SettingsError(
                f"HUBSTACK_ACCESS_SOURCES has list but {shown} does not exist: create it (see access/README.md)"
            )
    return Login(
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        callback_url=callback_url,
        authorize_url=authorize_url,
        token_url=token_url,
        userdata_url=userdata_url,
        scope=scope,
        groups_claim=raw["HUBSTACK_OIDC_GROUPS_CLAIM"].strip() or DEFAULTS["HUBSTACK_OIDC_GROUPS_CLAIM"],
        github_orgs=github_orgs,
        google_domains=google_domains,
        admin_users=admin_users,
        admin_groups=admin_groups,
        admin_full_access=parse.boolean("HUBSTACK_ADMIN_FULL_ACCESS", raw["HUBSTACK_ADMIN_FULL_ACCESS"]),
        sources=sources,
        registry_url=registry_url,
        registry_auth=registry_auth,
        registry_key=registry_key,
        registry_secret=registry_secret,
        registry_timeout=parse.seconds("HUBSTACK_REGISTRY_TIMEOUT", raw["HUBSTACK_REGISTRY_TIMEOUT"], 0.5, 60),
        require_cloud_access=parse.boolean(
            "HUBSTACK_REGISTRY_REQUIRE_CLOUD_ACCESS", raw["HUBSTACK_REGISTRY_REQUIRE_CLOUD_ACCESS"]
        ),
        approval_list=approval_list,
        cache_seconds=int(parse.seconds("HUBSTACK_ACCESS_CACHE", raw["HUBSTACK_ACCESS_CACHE"], 0, 3600)),
        recheck_seconds=int(parse.seconds("HUBSTACK_ACCESS_RECHECK", raw["HUBSTACK_ACCESS_RECHECK"], 5, 86400)),
        apply_url=parse.url(
            "HUBSTACK_ACCESS_APPLY_URL", raw["HUBSTACK_ACCESS_APPLY_URL"], required=False, browser=True
        ),
        cookie_secret=cookie_secret,
        crypt_key=crypt_key,
        metrics_token=metrics_token,
        audit_rotate_bytes=int(
            parse.number("HUBSTACK_AUDIT_ROTATE_MB", raw["HUBSTACK_AUDIT_ROTATE_MB"], 1, 10_000, example="10") * 2**20
        ),
        outage_grace=None
        if raw["HUBSTACK_ACCESS_OUTAGE_GRACE"].strip().lower() == "off"
        else int(parse.seconds("HUBSTACK_ACCESS_OUTAGE_GRACE", raw["HUBSTACK_ACCESS_OUTAGE_GRACE"], 0, 30 * 86400)),
        audit_keep=parse.number("HUBSTACK_AUDIT_KEEP", raw["HUBSTACK_AUDIT_KEEP"], 1, 100_000, int, "50"),
    )
