"""Every setting of a hubstack instance, read and checked in one place.

Settings come from the process environment and from `.env` in the project
folder (the environment wins). The CLI and the hub's `jupyterhub_config.py`
both load them through `load()`, so a bad value gets the same one-line error
on the host and in the hub.

This module imports nothing outside the standard library at import time: the
hub image copies it in as it is.
"""

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

TRUE = {"1", "true", "yes", "on"}
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
FALSE = {"0", "false", "no", "off", ""}

# name -> (default, help). The one list of settings; README's table follows it.
KNOWN = {
    "HUBSTACK_NAME": ("hubstack", "prefix of every container, image, volume and network of this instance"),
    "HUBSTACK_PORT": ("8000", "host port the hub is published on"),
    "HUBSTACK_BIND": ("127.0.0.1", "host address the hub is published on"),
    "DEV_MODE": ("0", "1: dummy log-in for local development (loopback only)"),
    "HUBSTACK_DEV_PASSWORD": ("", "dev mode: one shared password (8+ characters) instead of none"),
    "HUBSTACK_ALLOW_INSECURE_DEV": ("0", "1: allow dev mode on a non-loopback bind (never in production)"),
    "HUBSTACK_BASE_IMAGE": ("debian:bookworm-slim", "Debian bookworm image every image is built FROM"),
    "HUBSTACK_SECRETS_DIR": ("./secrets", "folder of secret files (mode 600), relative to the checkout; see secrets.example/"),
    # Production log-in (DEV_MODE=0); checked by hubstack.login.
    "HUBSTACK_OAUTH_PROVIDER": ("", "google, github or oidc: who proves the user's identity"),
    "OAUTH_CLIENT_ID": ("", "client id of the OAuth app registered with the provider"),
    "OAUTH_CALLBACK_URL": ("", "https://<public name>/hub/oauth_callback, as registered with the provider"),
    "OAUTH2_AUTHORIZE_URL": ("", "oidc: the provider's authorization endpoint (browser-facing)"),
    "OAUTH2_TOKEN_URL": ("", "oidc: the provider's token endpoint"),
    "OAUTH2_USERDATA_URL": ("", "oidc: the provider's userinfo endpoint"),
    "HUBSTACK_OIDC_SCOPE": ("openid email", "oidc: scopes to request (must include email)"),
    "HUBSTACK_OIDC_GROUPS_CLAIM": ("groups", "oidc: userinfo claim that lists the user's groups"),
    "HUBSTACK_GITHUB_ORGS": ("", "github: only members of these organisations or org:team (comma-separated)"),
    "HUBSTACK_GOOGLE_DOMAINS": ("", "google: only accounts of these hosted domains (comma-separated)"),
    "HUBSTACK_ADMIN_USERS": ("", "e-mail addresses of hub admins (comma-separated); they need approval too"),
    "HUBSTACK_ADMIN_GROUPS": ("", "oidc/github: groups (github: org:team) whose members are hub admins"),
    # The access check after log-in; checked by hubstack.login.
    "HUBSTACK_ACCESS_SOURCES": ("", "approval sources asked in order, any approval lets in: registry, list"),
    "HUBSTACK_REGISTRY_URL": ("", "base URL of the DACO-style registry (GET <base>/search?...)"),
    "HUBSTACK_REGISTRY_AUTH": ("oauth1-hmac-sha1", "oauth1-hmac-sha1, oauth1-plaintext (the original's) or bearer"),
    "HUBSTACK_REGISTRY_CONSUMER_KEY": ("", "oauth1: consumer key (its secret: secrets/registry_consumer_secret)"),
    "HUBSTACK_REGISTRY_TIMEOUT": ("5", "seconds before an unanswered registry counts as unavailable"),
    "HUBSTACK_REGISTRY_REQUIRE_CLOUD_ACCESS": ("0", "1: also require the registry's cloud-access flag"),
    "HUBSTACK_ACCESS_DIR": ("./access", "folder of the approval list approvals.csv, relative to the checkout"),
    "HUBSTACK_ACCESS_CACHE": ("180", "seconds a past approval carries a user over a registry outage"),
    "HUBSTACK_ACCESS_RECHECK": ("300", "seconds between re-checks of logged-in users (auth_refresh_age)"),
    "HUBSTACK_ACCESS_APPLY_URL": ("", "where the denial page sends people to apply for access"),
    # What one user server may use (see README.md, 'Limits'); checked by user_limits().
    "HUBSTACK_USER_MEM_LIMIT": ("2G", "memory of one user server (kernels included), e.g. 2G or 512M; no swap beyond it"),
    "HUBSTACK_USER_CPU_LIMIT": ("1", "CPU cores one user server may use, e.g. 1 or 0.5"),
    "HUBSTACK_USER_PIDS_LIMIT": ("512", "processes and threads one user server may run (stops fork bombs)"),
    "HUBSTACK_IDLE_TIMEOUT": ("3600", "seconds without activity before a user server is stopped (0: never); its volume stays"),
    "HUBSTACK_SPAWN_CONCURRENCY": ("6", "servers starting at once; more users are asked to wait and retry"),
    "HUBSTACK_MAX_SERVERS": ("0", "user servers running at once (0: no limit)"),
    # HTTPS: Caddy in front of the hub (the tls service); checked by https_settings() and Settings.check_https.
    "HUBSTACK_HTTPS": ("off", "off, acme (automatic certificates), files (secrets/tls_fullchain.pem and tls_privkey.pem) or self-signed"),
    "HUBSTACK_DOMAIN": ("", "the public DNS name of the hub, e.g. hub.example.org (self-signed: localhost if empty)"),
    "HUBSTACK_ACME_EMAIL": ("", "acme: the operator's e-mail address, for the CA's expiry and account notices"),
    "HUBSTACK_ACME_CA": (LETS_ENCRYPT, "acme: the CA's ACME directory URL (default: Let's Encrypt's production one)"),
    "HUBSTACK_ACME_CA_ROOT": ("", "acme: PEM file of a private ACME CA's root to trust, relative to the checkout (empty: the system's roots)"),
    "HUBSTACK_HTTPS_PORT": ("443", "host port of HTTPS, on HUBSTACK_BIND"),
    "HUBSTACK_HTTP_PORT": ("80", "host port of plain HTTP (redirects to HTTPS; ACME's HTTP challenge), on HUBSTACK_BIND"),
    "HUBSTACK_TLS_RENEW_INTERVAL": ("600", "seconds between the terminator's checks for certificates to renew"),
    "HUBSTACK_TLS_RENEW_WINDOW": ("0.3333", "renew a certificate when this fraction of its lifetime is left (0 < x <= 1)"),
}

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")


def short_id(image_id):
    """'sha256:4f1c...' -> '4f1c...' (12 hex digits): names an image's version in tags and volumes."""
    return image_id.split(":")[-1][:12]


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message says what to fix."""


def _bool(key, raw):
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SettingsError(f"{key}={raw!r} is not a yes/no value: use 1 or 0")


def _port(key, raw):
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingsError(f"{key}={raw!r} is not a port number: use a number from 1 to 65535")
    return int(raw)


def _address(key, raw):
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise SettingsError(
            f"{key}={raw!r} is not an IP address: use 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces)"
        ) from None


# Secrets live in files (HUBSTACK_SECRETS_DIR), never in the environment,
# where `docker inspect` and process listings show them.
SECRET_VARIABLES = {"OAUTH_CLIENT_SECRET": "oauth_client_secret"}


def _check_unknown(values, origin):
    for key, value in values.items():
        if key in SECRET_VARIABLES and value:
            raise SettingsError(
                f"{key} is set in {origin}: secrets belong in files, not the environment; "
                f"put it in secrets/{SECRET_VARIABLES[key]} (mode 600) and remove the variable"
            )
        if key.startswith("HUBSTACK_") and key not in KNOWN:
            close = difflib.get_close_matches(key, KNOWN, n=1)
            hint = f"did you mean {close[0]}?" if close else "see the settings table in README.md"
            raise SettingsError(f"unknown setting {key} in {origin}: {hint}")


UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _bytes(key, raw):
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", raw, re.IGNORECASE)
    value = int(float(match[1]) * UNITS[match[2].upper()]) if match else 0
    if value < 128 * 1024**2:
        raise SettingsError(f"{key}={raw!r} is not a memory size of 128M or more: use e.g. 2G or 512M")
    return value


def _number(key, raw, low, high, kind=float, example="1"):
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{key}={raw!r} is not a number from {low} to {high}: use e.g. {example}")
    return value


@dataclass(frozen=True)
class UserLimits:
    """What one user server may use, and how many start and run at once."""

    mem_bytes: int
    cpus: float
    pids: int
    idle_timeout: int
    spawn_concurrency: int
    max_servers: int

    @property
    def cull_every(self):
        """How often the idle culler looks: a sixth of the timeout, 10 s to 5 min."""
        return max(10, min(300, self.idle_timeout // 6))


def user_limits(raw):
    return UserLimits(
        mem_bytes=_bytes("HUBSTACK_USER_MEM_LIMIT", raw["HUBSTACK_USER_MEM_LIMIT"]),
        cpus=_number("HUBSTACK_USER_CPU_LIMIT", raw["HUBSTACK_USER_CPU_LIMIT"], 0.1, 256, example="1"),
        pids=_number("HUBSTACK_USER_PIDS_LIMIT", raw["HUBSTACK_USER_PIDS_LIMIT"], 64, 1_000_000, int, "512"),
        idle_timeout=_number("HUBSTACK_IDLE_TIMEOUT", raw["HUBSTACK_IDLE_TIMEOUT"], 0, 30 * 86400, int, "3600"),
        spawn_concurrency=_number("HUBSTACK_SPAWN_CONCURRENCY", raw["HUBSTACK_SPAWN_CONCURRENCY"], 1, 1000, int, "6"),
        max_servers=_number("HUBSTACK_MAX_SERVERS", raw["HUBSTACK_MAX_SERVERS"], 0, 100_000, int, "0"),
    )


HTTPS_MODES = ("off", "acme", "files", "self-signed")
# Provided certificate (HUBSTACK_HTTPS=files), in HUBSTACK_SECRETS_DIR.
TLS_CHAIN, TLS_KEY = "tls_fullchain.pem", "tls_privkey.pem"
DNS_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DNS_NAME_RE = re.compile(rf"^{DNS_LABEL}(\.{DNS_LABEL})*$")
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


@dataclass(frozen=True)
class HTTPS:
    """How the hub is published: plain on HUBSTACK_BIND, or behind the tls service (Caddy)."""

    mode: str  # off, acme, files, self-signed
    domain: str  # the public DNS name; self-signed: localhost unless set
    https_port: int
    http_port: int
    acme_email: str
    acme_ca: str
    acme_ca_root: str  # path as given (relative to the checkout), or ""
    renew_interval: int
    renew_window: float

    @property
    def on(self):
        return self.mode != "off"


def https_settings(raw):
    """The HTTPS settings, each checked on its own; check_https checks them together."""
    mode = raw["HUBSTACK_HTTPS"].strip().lower() or "off"
    if mode not in HTTPS_MODES:
        raise SettingsError(f"HUBSTACK_HTTPS={raw['HUBSTACK_HTTPS']!r} is not known: use off, acme, files or self-signed")
    domain = raw["HUBSTACK_DOMAIN"].strip().lower().rstrip(".")
    if domain and (len(domain) > 253 or not DNS_NAME_RE.match(domain) or domain.rsplit(".", 1)[-1].isdigit()):
        raise SettingsError(
            f"HUBSTACK_DOMAIN={raw['HUBSTACK_DOMAIN']!r} is not a DNS name: use the name researchers type, "
            "e.g. hub.example.org (no scheme, port, path or IP address)"
        )
    email = raw["HUBSTACK_ACME_EMAIL"].strip()
    if email and not EMAIL_RE.match(email):
        raise SettingsError(f"HUBSTACK_ACME_EMAIL={email!r} is not an e-mail address: use e.g. ops@example.org")
    acme_ca = raw["HUBSTACK_ACME_CA"].strip()
    if not re.match(r"^https://[^/\s]+(/\S*)?$", acme_ca):
        raise SettingsError(
            f"HUBSTACK_ACME_CA={acme_ca!r} is not an https URL: use the CA's ACME directory, e.g. {LETS_ENCRYPT}"
        )
    ca_root = raw["HUBSTACK_ACME_CA_ROOT"].strip()
    if ca_root and (not ca_root.startswith(("./", "../", "/")) or any(c.isspace() or c in ":$" for c in ca_root)):
        raise SettingsError(f"HUBSTACK_ACME_CA_ROOT={ca_root!r} is not a file path Compose can mount: use ./name.pem or an absolute path")
    https_port = _port("HUBSTACK_HTTPS_PORT", raw["HUBSTACK_HTTPS_PORT"])
    http_port = _port("HUBSTACK_HTTP_PORT", raw["HUBSTACK_HTTP_PORT"])
    return HTTPS(
        mode=mode,
        domain=domain or ("localhost" if mode == "self-signed" else ""),
        https_port=https_port,
        http_port=http_port,
        acme_email=email,
        acme_ca=acme_ca,
        acme_ca_root=ca_root,
        renew_interval=_number("HUBSTACK_TLS_RENEW_INTERVAL", raw["HUBSTACK_TLS_RENEW_INTERVAL"], 1, 86400, int, "600"),
        renew_window=_number("HUBSTACK_TLS_RENEW_WINDOW", raw["HUBSTACK_TLS_RENEW_WINDOW"], 0.000001, 1, example="0.3333"),
    )


def check_tls_files(secrets_dir, shown_dir):
    """HUBSTACK_HTTPS=files: the full chain and its private key, readable only by their owner, belonging together."""
    import ssl
    import stat

    chain, key = Path(secrets_dir) / TLS_CHAIN, Path(secrets_dir) / TLS_KEY
    for path, what in ((chain, "the certificate with its intermediates (full chain, PEM)"), (key, "its private key (PEM)")):
        if not path.is_file():
            raise SettingsError(
                f"HUBSTACK_HTTPS=files but {shown_dir}/{path.name} is missing: put {what} there (key: mode 600)"
            )
    if stat.S_IMODE(key.stat().st_mode) & 0o077:
        raise SettingsError(f"{shown_dir}/{TLS_KEY} can be read by others: run `chmod 600 {shown_dir}/{TLS_KEY}`")
    def no_password():  # never OpenSSL's prompt on the terminal
        raise SettingsError(f"{shown_dir}/{TLS_KEY} is encrypted: Caddy needs its unencrypted private key (mode 600)")

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(chain, key, password=no_password)
    except ssl.SSLError as err:
        reason = err.reason or str(err)
        fix = ("the key is not the certificate's: put the matching pair there" if "MISMATCH" in str(reason)
               else "both must be PEM: the full chain (leaf first) and its unencrypted private key")
        raise SettingsError(f"{shown_dir}/{TLS_CHAIN} and {TLS_KEY} cannot be used ({reason}): {fix}") from None
    except OSError as err:
        raise SettingsError(f"cannot read {shown_dir}/{TLS_CHAIN} or {TLS_KEY}: {err.strerror}") from None


@dataclass(frozen=True)
class Settings:
    name: str
    port: int
    bind: str
    dev_mode: bool
    dev_password: str
    allow_insecure_dev: bool
    base_image: str
    limits: UserLimits = None
    tls: HTTPS = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    # Names of everything that belongs to this instance.
    @property
    def network(self):
        return f"{self.name}-net"

    @property
    def hub_container(self):
        return f"{self.name}-hub"

    @property
    def hub_data_volume(self):
        return f"{self.name}-hub-data"

    @property
    def tls_container(self):
        return f"{self.name}-tls"

    @property
    def tls_data_volume(self):
        """Caddy's data: certificates, keys, the ACME account, the self-signed CA."""
        return f"{self.name}-tls-data"

    @property
    def user_prefix(self):
        return f"{self.name}-user"

    @property
    def home_volume_template(self):
        """DockerSpawner fills {username} with its escaped user name."""
        return f"{self.name}-home-{{username}}"

    def image(self, role):
        """role: hub-core, hub, notebook, environment."""
        return f"{self.name}-{role}"

    def env_volume(self, version):
        return f"{self.name}-env-{version}"

    def folders(self, project):
        """Where the host sees this instance's secrets and approval list."""
        project = Path(project)
        return project / self.raw["HUBSTACK_SECRETS_DIR"], project / self.raw["HUBSTACK_ACCESS_DIR"]

    @property
    def labels(self):
        return {"hubstack.instance": self.name}

    @property
    def loopback_bind(self):
        return ipaddress.ip_address(self.bind).is_loopback

    @property
    def https(self):
        """off, acme, files or self-signed (HUBSTACK_HTTPS)."""
        return self.tls.mode

    @property
    def hub_bind(self):
        """Where the hub's own port is published: behind HTTPS only on loopback, for the CLI's health check."""
        return "127.0.0.1" if self.tls.on else self.bind

    @property
    def url(self):
        """The hub's own plain-HTTP address on this machine (health checks, tests)."""
        host = "127.0.0.1" if ipaddress.ip_address(self.hub_bind).is_unspecified else self.hub_bind
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def public_url(self):
        """Where researchers open the hub: https://<domain>[:port] behind HTTPS, else the hub's own address."""
        if not self.tls.on:
            return self.url
        return f"https://{self.tls.domain}" + ("" if self.tls.https_port == 443 else f":{self.tls.https_port}")

    def check_https(self, secrets_dir):
        """The HTTPS settings together: what the chosen mode needs is there and usable."""
        tls = self.tls
        if not tls.on:
            return
        ports = {"HUBSTACK_HTTPS_PORT": tls.https_port, "HUBSTACK_HTTP_PORT": tls.http_port, "HUBSTACK_PORT": self.port}
        for key, port in ports.items():
            others = [k for k, p in ports.items() if p == port and k != key]
            if others:
                raise SettingsError(f"{key}={port} is also {others[0]}: give HTTPS, HTTP and the hub different ports")
        if tls.mode == "acme":
            if not tls.domain:
                raise SettingsError("HUBSTACK_HTTPS=acme needs HUBSTACK_DOMAIN: set it to the hub's public DNS name, e.g. hub.example.org")
            if "." not in tls.domain:
                raise SettingsError(
                    f"HUBSTACK_DOMAIN={tls.domain!r} cannot get a certificate from an ACME CA: use a public name such "
                    "as hub.example.org, or HUBSTACK_HTTPS=self-signed to try HTTPS locally"
                )
            if not tls.acme_email:
                raise SettingsError("HUBSTACK_HTTPS=acme needs HUBSTACK_ACME_EMAIL: the address the CA writes to about expiring certificates")
        if tls.mode == "files":
            if not tls.domain:
                raise SettingsError("HUBSTACK_HTTPS=files needs HUBSTACK_DOMAIN: set it to the name the certificate is for")
            check_tls_files(secrets_dir, self.raw.get("HUBSTACK_SECRETS_DIR", "secrets").rstrip("/") or "secrets")

    def acme_ca_root_file(self, project):
        """HUBSTACK_ACME_CA_ROOT as a file on this machine (None when unset); refused when it is not a PEM certificate."""
        if not (self.tls.on and self.tls.acme_ca_root):
            return None
        path = Path(project) / self.tls.acme_ca_root
        try:
            text = path.read_text(errors="replace")
        except OSError as err:
            raise SettingsError(f"HUBSTACK_ACME_CA_ROOT={self.tls.acme_ca_root!r}: {err.strerror}: put the CA's root certificate (PEM) there") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise SettingsError(f"HUBSTACK_ACME_CA_ROOT={self.tls.acme_ca_root!r} holds no PEM certificate: use the CA's root certificate")
        return path

    def check_mode(self, secrets_dir, access_dir):
        """Refuse configurations that would open the hub to anyone.

        Returns the checked production log-in (hubstack.login.Login), or None
        in dev mode. The folders are where this process sees the instance's
        secrets and approval list (the checkout on the host, mounts in the hub).
        """
        if self.dev_mode:
            if not self.loopback_bind and not self.allow_insecure_dev:
                raise SettingsError(
                    f"dev mode lets anyone log in, so it only binds to loopback: set HUBSTACK_BIND=127.0.0.1 "
                    f"(now {self.bind}), or HUBSTACK_ALLOW_INSECURE_DEV=1 on a network you trust"
                )
            self.check_https(secrets_dir)
            return None
        if self.dev_password:
            raise SettingsError("HUBSTACK_DEV_PASSWORD is a dev-mode setting: remove it outside dev mode (DEV_MODE=0)")
        if self.allow_insecure_dev:
            raise SettingsError("HUBSTACK_ALLOW_INSECURE_DEV is a dev-mode setting: set it to 0 outside dev mode")
        if not self.tls.on and not self.loopback_bind:
            raise SettingsError(
                f"HUBSTACK_HTTPS is off but HUBSTACK_BIND={self.bind} would publish the hub in plain HTTP: "
                "set HUBSTACK_HTTPS (acme, files or self-signed), or HUBSTACK_BIND=127.0.0.1 behind your own TLS terminator"
            )
        self.check_https(secrets_dir)
        from .login import load_login  # stdlib only, like this module

        login = load_login(self.raw, Path(secrets_dir), Path(access_dir))
        if self.tls.on:
            callback = urlsplit(login.callback_url)
            if callback.scheme != "https" or callback.hostname != self.tls.domain:
                raise SettingsError(
                    f"OAUTH_CALLBACK_URL={login.callback_url!r} is not on HUBSTACK_DOMAIN={self.tls.domain}: "
                    f"use https://{self.tls.domain}/hub/oauth_callback (and register it with the provider)"
                )
        return login

    def as_environment(self):
        """The settings as environment variables, for Compose and the hub."""
        return {
            **self.raw,
            "HUBSTACK_NAME": self.name,
            "HUBSTACK_PORT": str(self.port),
            "HUBSTACK_BIND": self.bind,
            "DEV_MODE": "1" if self.dev_mode else "0",
            "HUBSTACK_DEV_PASSWORD": self.dev_password,
            "HUBSTACK_ALLOW_INSECURE_DEV": "1" if self.allow_insecure_dev else "0",
            "HUBSTACK_BASE_IMAGE": self.base_image,
        }


def read_dotenv(path):
    path = Path(path)
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: (v or "") for k, v in dotenv_values(path).items()}


def load(environ=None, dotenv_path=None, **overrides):
    """Settings from `.env` (if given) and environ, checked; overrides win over both."""
    environ = os.environ if environ is None else environ
    file_values = read_dotenv(dotenv_path) if dotenv_path else {}
    _check_unknown(file_values, str(dotenv_path))
    _check_unknown(environ, "the environment")
    raw = {key: default for key, (default, _) in KNOWN.items()}
    raw.update({k: v for k, v in file_values.items() if k in KNOWN})
    raw.update({k: v for k, v in environ.items() if k in KNOWN})
    raw.update({k: v for k, v in overrides.items() if v is not None})

    name = raw["HUBSTACK_NAME"].strip()
    if not NAME_RE.match(name):
        raise SettingsError(
            f"HUBSTACK_NAME={name!r} is not a usable name: use 1-32 lower-case letters, digits and '-', "
            "starting with a letter"
        )
    password = raw["HUBSTACK_DEV_PASSWORD"]
    if password and len(password) < 8:
        raise SettingsError("HUBSTACK_DEV_PASSWORD is too short: use 8 characters or more, or leave it empty")
    base_image = raw["HUBSTACK_BASE_IMAGE"].strip()
    if not base_image or any(c.isspace() for c in base_image):
        raise SettingsError(f"HUBSTACK_BASE_IMAGE={base_image!r} is not an image name: use e.g. debian:bookworm-slim")
    for key in ("HUBSTACK_SECRETS_DIR", "HUBSTACK_ACCESS_DIR"):
        folder = raw[key].strip()
        if not folder.startswith(("./", "../", "/")) or any(c.isspace() or c in ":$" for c in folder):
            raise SettingsError(f"{key}={folder!r} is not a folder path Compose can mount: use ./name or an absolute path")
    return Settings(
        name=name,
        port=_port("HUBSTACK_PORT", raw["HUBSTACK_PORT"]),
        bind=_address("HUBSTACK_BIND", raw["HUBSTACK_BIND"]),
        dev_mode=_bool("DEV_MODE", raw["DEV_MODE"]),
        dev_password=password,
        allow_insecure_dev=_bool("HUBSTACK_ALLOW_INSECURE_DEV", raw["HUBSTACK_ALLOW_INSECURE_DEV"]),
        base_image=base_image,
        limits=user_limits(raw),
        tls=https_settings(raw),
        raw=raw,
    )
