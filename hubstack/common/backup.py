"""Where `hubstack backup` writes and how long it keeps snapshots (README.md, "Backups").

HUBSTACK_BACKUP_REPOSITORY is a folder on this machine (absolute, or ./relative
to the checkout; restic's `local:/path` too), bind-mounted into the backup
container, or the URL of one of restic's own backends, given to restic as it is.
HUBSTACK_BACKUP_KEEP is restic's retention policy, e.g. daily=7,weekly=4,monthly=6.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from . import parse
from .parse import SettingsError

# restic's backends that need nothing but restic itself (rclone: needs rclone, not in the image).
URL_BACKENDS = ("sftp", "rest", "s3", "b2", "azure", "gs", "swift")
KEEP_UNITS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")  # restic forget --keep-<unit> N
KEEP_EXAMPLE = "daily=7,weekly=4,monthly=6"


@dataclass(frozen=True)
class BackupSettings:
    repository: str = ""  # as the operator wrote it; "" when not set
    folder: str = ""  # a repository on this machine: ./relative (to the checkout) or absolute
    keep: tuple = ()  # ((unit, count), ...)

    @property
    def configured(self):
        return bool(self.repository)

    def folder_path(self, project):
        """The repository's folder on this machine, or None for a URL."""
        return (Path(project) / self.folder).resolve() if self.folder else None

    @property
    def shown(self):
        """The repository for messages: a URL's password (//user:password@) is never shown."""
        return re.sub(r"(//[^/:@]+):[^/@]+@", r"\1:***@", self.repository)

    @property
    def keep_text(self):
        return ",".join(f"{unit}={count}" for unit, count in self.keep)

    def keep_args(self):
        return [arg for unit, count in self.keep for arg in (f"--keep-{unit}", str(count))]


def repository(raw):
    """(repository, folder) from HUBSTACK_BACKUP_REPOSITORY."""
    value = raw.strip()
    if not value:
        return "", ""
    if value.startswith("local:"):
        folder = value[len("local:") :]
        if not folder.startswith("/"):
            raise SettingsError(
                f"HUBSTACK_BACKUP_REPOSITORY={raw!r}: a local: repository needs an absolute path, e.g. local:/srv/backups/hub"
            )
        return value, parse.mount_path("HUBSTACK_BACKUP_REPOSITORY", folder)
    if value.startswith(("/", "./", "../")):
        return value, parse.mount_path("HUBSTACK_BACKUP_REPOSITORY", value)
    scheme = value.split(":", 1)[0]
    if ":" in value and scheme in URL_BACKENDS and value[len(scheme) + 1 :].strip():
        return value, ""
    raise SettingsError(
        f"HUBSTACK_BACKUP_REPOSITORY={raw!r} is neither a folder (/srv/backups/hub or ./backups) nor a restic "
        f"repository URL ({', '.join(s + ':' for s in URL_BACKENDS)})"
    )


def keep(raw):
    """((unit, count), ...) from HUBSTACK_BACKUP_KEEP, in restic's order of units."""
    seen = {}
    for item in parse.items(raw):
        unit, equals, count = (part.strip() for part in item.partition("="))
        if not equals or unit not in KEEP_UNITS or not count.isdigit() or not 1 <= int(count) <= 100_000:
            raise SettingsError(
                f"HUBSTACK_BACKUP_KEEP={raw!r}: {item!r} is not <unit>=<count>: use e.g. {KEEP_EXAMPLE} "
                f"(units: {', '.join(KEEP_UNITS)}; counts from 1)"
            )
        if unit in seen:
            raise SettingsError(f"HUBSTACK_BACKUP_KEEP={raw!r} names {unit} twice: keep one")
        seen[unit] = int(count)
    if not seen:
        raise SettingsError(f"HUBSTACK_BACKUP_KEEP is empty: say what to keep, e.g. {KEEP_EXAMPLE}")
    return tuple((unit, seen[unit]) for unit in KEEP_UNITS if unit in seen)


def load(raw):
    where, folder = repository(raw["HUBSTACK_BACKUP_REPOSITORY"])
    return BackupSettings(repository=where, folder=folder, keep=keep(raw["HUBSTACK_BACKUP_KEEP"]))
