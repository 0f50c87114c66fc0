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
from dataclasses import dataclass
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


def _check_unknown(values, origin):
    for key in values:
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

    def check_mode(self):
        """Refuse configurations that would open the hub to anyone."""
        if self.dev_mode and not self.loopback_bind and not self.allow_insecure_dev:
            raise SettingsError(
                f"dev mode lets anyone log in, so it only binds to loopback: set HUBSTACK_BIND=127.0.0.1 "
                f"(now {self.bind}), or HUBSTACK_ALLOW_INSECURE_DEV=1 on a network you trust"
            )
        if not self.dev_mode:
            raise SettingsError(
                "production log-in is not configured in this version: set DEV_MODE=1 (or use --dev) "
                "for a local development hub"
            )

    def as_environment(self):
        """The settings as environment variables, for Compose and the hub."""
        return {
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
    return Settings(
        name=name,
        port=_port("HUBSTACK_PORT", raw["HUBSTACK_PORT"]),
        bind=_address("HUBSTACK_BIND", raw["HUBSTACK_BIND"]),
        dev_mode=_bool("DEV_MODE", raw["DEV_MODE"]),
        dev_password=password,
        allow_insecure_dev=_bool("HUBSTACK_ALLOW_INSECURE_DEV", raw["HUBSTACK_ALLOW_INSECURE_DEV"]),
        base_image=base_image,
    )
