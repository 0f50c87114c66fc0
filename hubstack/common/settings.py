"""The checked settings of one instance, from `.env` and the environment.

Settings come from the process environment and from `.env` in the checkout
(the environment wins). The CLI and the hub's `jupyterhub_config.py` both
load them through `load()`, so a bad value gets the same one-line error on
the host and in the hub. The table of settings is registry.SETTINGS.
"""

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import backup, disk, egress, parse
from .backup import BackupSettings
from .contract import CLIENT_SECRET, LOG_DRIVER, LOG_MAX_FILES, LOG_MAX_SIZE, USER_TMP, Names
from .disk import DiskPolicy
from .egress import Egress
from .https import HTTPS, https_settings
from .parse import SettingsError
from .registry import DEFAULTS, KNOWN

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
# Secrets live in files (HUBSTACK_SECRETS_DIR), never in the environment,
# where `docker inspect` and process listings show them.
SECRET_VARIABLES = {"OAUTH_CLIENT_SECRET": CLIENT_SECRET}


@dataclass(frozen=True)
class UserLimits:
    """What one user server may use, and how many start and run at once."""

    mem_bytes: int
    cpus: float
    pids: int
    idle_timeout: int
    spawn_concurrency: int
    max_servers: int
    tmp_bytes: int = 1024**3

    @property
    def cull_every(self):
        """How often the idle culler looks: a sixth of the timeout, 10 s to 5 min."""
        return max(10, min(300, self.idle_timeout // 6))

    def host_config(self):
        """Docker's settings of a user server beyond memory and CPU: the spawner and the benchmarks' bare runs."""
        return {
            "memswap_limit": self.mem_bytes,  # no swap beyond the memory limit
            "pids_limit": self.pids,
            "cap_drop": ["ALL"],  # the server runs as an ordinary user and needs none
            "security_opt": ["no-new-privileges"],
            # Nothing outside the home grows without bound: a read-only root, /tmp in memory of a fixed
            # size (exec: pip builds run there), and a capped log.
            "read_only": True,
            "tmpfs": {USER_TMP: f"rw,exec,nosuid,nodev,mode=1777,size={self.tmp_bytes}"},
            "log_config": {"type": LOG_DRIVER, "config": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILES}},
        }


def user_limits(raw):
    return UserLimits(
        mem_bytes=parse.memory("HUBSTACK_USER_MEM_LIMIT", raw["HUBSTACK_USER_MEM_LIMIT"]),
        cpus=parse.number("HUBSTACK_USER_CPU_LIMIT", raw["HUBSTACK_USER_CPU_LIMIT"], 0.1, 256, example="1"),
        pids=parse.number("HUBSTACK_USER_PIDS_LIMIT", raw["HUBSTACK_USER_PIDS_LIMIT"], 64, 1_000_000, int, "512"),
        idle_timeout=parse.number("HUBSTACK_IDLE_TIMEOUT", raw["HUBSTACK_IDLE_TIMEOUT"], 0, 30 * 86400, int, "3600"),
        spawn_concurrency=parse.number(
            "HUBSTACK_SPAWN_CONCURRENCY", raw["HUBSTACK_SPAWN_CONCURRENCY"], 1, 1000, int, "6"
        ),
        max_servers=parse.number("HUBSTACK_MAX_SERVERS", raw["HUBSTACK_MAX_SERVERS"], 0, 100_000, int, "0"),
        tmp_bytes=parse.size("HUBSTACK_TMP_SIZE", raw["HUBSTACK_TMP_SIZE"], 16 * 1024**2, example="1G or 512M"),
    )


@dataclass(frozen=True)
class Settings:
    name: str
    port: int
    bind: str
    dev_mode: bool
    dev_password: str
    allow_insecure_dev: bool
    base_image: str
    title: str = "hubstack"  # HUBSTACK_TITLE, or "hubstack · <name>"
    limits: UserLimits = None
    tls: HTTPS = None
    cookie_max_age_days: float = 1
    token_max_age_seconds: int = 30 * 86400
    egress: Egress = None
    disk: DiskPolicy = DiskPolicy()
    backup: BackupSettings = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def names(self):
        return Names(self.name)

    def folders(self, project):
        """Where the host sees this instance's secrets and approval list."""
        project = Path(project)
        return project / self.raw["HUBSTACK_SECRETS_DIR"], project / self.raw["HUBSTACK_ACCESS_DIR"]

    @property
    def shown_secrets_dir(self):
        """The secrets folder as the operator wrote it, for messages."""
        return self.raw["HUBSTACK_SECRETS_DIR"].rstrip("/") or "."

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
    def local_host(self):
        """An address of this machine where the published ports answer (for health and certificate checks)."""
        bind = ipaddress.ip_address(self.bind)
        if bind.is_loopback or not bind.is_unspecified:
            return self.bind
        return "::1" if bind.version == 6 else "127.0.0.1"

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


def check_unknown(values, origin):
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


def read_dotenv(path):
    path = Path(path)
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # the CLI's dependency; the hub never reads .env

    return {k: (v or "") for k, v in dotenv_values(path).items()}


def load(environ=None, dotenv_path=None, **overrides):
    """Settings from `.env` (if given) and environ, checked; overrides win over both."""
    environ = os.environ if environ is None else environ
    file_values = read_dotenv(dotenv_path) if dotenv_path else {}
    check_unknown(file_values, str(dotenv_path))
    check_unknown(environ, "the environment")
    raw = dict(DEFAULTS)
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
    title = raw["HUBSTACK_TITLE"].strip()
    if len(title) > 80 or not title.isprintable():
        raise SettingsError(f"HUBSTACK_TITLE={title[:40]!r}... is not a title: use one line of at most 80 characters")
    base_image = raw["HUBSTACK_BASE_IMAGE"].strip()
    if not base_image or any(c.isspace() for c in base_image):
        raise SettingsError(f"HUBSTACK_BASE_IMAGE={base_image!r} is not an image name: use e.g. debian:bookworm-slim")
    for key in ("HUBSTACK_SECRETS_DIR", "HUBSTACK_ACCESS_DIR"):
        parse.mount_path(key, raw[key])
    if raw["HUBSTACK_WHEEL_CACHE"].strip() and not raw["HUBSTACK_WHEEL_CACHE"].strip().startswith("/"):
        raise SettingsError(
            f"HUBSTACK_WHEEL_CACHE={raw['HUBSTACK_WHEEL_CACHE']!r} is not an absolute path: use e.g. /var/cache/hubstack/wheels"
        )
    return Settings(
        name=name,
        port=parse.port("HUBSTACK_PORT", raw["HUBSTACK_PORT"]),
        bind=parse.address("HUBSTACK_BIND", raw["HUBSTACK_BIND"]),
        dev_mode=parse.boolean("DEV_MODE", raw["DEV_MODE"]),
        dev_password=password,
        title=title or f"hubstack · {name}",
        allow_insecure_dev=parse.boolean("HUBSTACK_ALLOW_INSECURE_DEV", raw["HUBSTACK_ALLOW_INSECURE_DEV"]),
        base_image=base_image,
        limits=user_limits(raw),
        tls=https_settings(raw),
        cookie_max_age_days=parse.number(
            "HUBSTACK_COOKIE_MAX_AGE_DAYS", raw["HUBSTACK_COOKIE_MAX_AGE_DAYS"], 0.01, 365, example="1"
        ),
        token_max_age_seconds=int(
            parse.number("HUBSTACK_TOKEN_MAX_AGE_DAYS", raw["HUBSTACK_TOKEN_MAX_AGE_DAYS"], 0.01, 3650, example="30")
            * 86400
        ),
        egress=egress.load(raw, parse.boolean("DEV_MODE", raw["DEV_MODE"])),
        disk=disk.load(raw),
        backup=backup.load(raw),
        raw=raw,
    )
