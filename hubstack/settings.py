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

TRUE = {"1", "true", "yes", "on"}
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


@dataclass(frozen=True)
class Settings:
    name: str
    port: int
    bind: str
    dev_mode: bool
    dev_password: str
    allow_insecure_dev: bool
    base_image: str
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
    def url(self):
        host = "127.0.0.1" if ipaddress.ip_address(self.bind).is_unspecified else self.bind
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

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
            return None
        if self.dev_password:
            raise SettingsError("HUBSTACK_DEV_PASSWORD is a dev-mode setting: remove it outside dev mode (DEV_MODE=0)")
        if self.allow_insecure_dev:
            raise SettingsError("HUBSTACK_ALLOW_INSECURE_DEV is a dev-mode setting: set it to 0 outside dev mode")
        from .login import load_login  # stdlib only, like this module

        return load_login(self.raw, Path(secrets_dir), Path(access_dir))

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
        raw=raw,
    )
