"""Server profiles: `profiles.toml` in HUBSTACK_ACCESS_DIR.

A profile is what a researcher chooses on the spawn page: a description, the
image, the CPU, memory and process limits, an optional private database
(hubstack_hub.database), and the groups allowed to use it (none: everyone).
One is the default. Without the file there is one profile, `default`, with the
limits of .env (HUBSTACK_USER_*), and no form: today's behaviour.

A researcher's groups are those of hubstack.common.groups. Read when the hub
starts; the CLI checks the file at `hubstack up`. README.md, 'Profiles', has
an example.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import parse
from .contract import PROFILES_FILE
from .datasets import SAFE_NAME
from .groups import Groups, read_toml
from .parse import SettingsError

PROFILE_KEYS = {"description", "image", "memory", "cpus", "pids", "database", "database_memory", "groups", "default"}
DEFAULT_DATABASE_MEMORY = 256 * 1024**2
DEFAULT = "default"  # the one profile there is without profiles.toml


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    mem_bytes: int
    cpus: float
    pids: int
    image: str = ""  # "" is the instance's notebook image
    database: bool = False
    database_mem_bytes: int = DEFAULT_DATABASE_MEMORY
    groups: tuple = ()  # () is everyone
    default: bool = False

    def open_to(self, groups):
        return not self.groups or bool(set(self.groups) & set(groups))

    @property
    def summary(self):
        extras = ", a private database" if self.database else ""
        return f"{parse.shown_size(self.mem_bytes)} memory, {self.cpus:g} CPU{extras}"


@dataclass(frozen=True)
class Profiles:
    profiles: tuple
    groups: Groups = field(default_factory=Groups)

    @property
    def default(self):
        return next(p for p in self.profiles if p.default)

    def get(self, name):
        return next((p for p in self.profiles if p.name == name), None)

    def offered(self, user, hub_groups=()):
        """The profiles this user may choose, default first."""
        groups = self.groups.of(user, hub_groups)
        mine = [p for p in self.profiles if p.open_to(groups)]
        return sorted(mine, key=lambda p: not p.default)


def load(folder, shown_folder, limits, groups=None):
    """The profiles of HUBSTACK_ACCESS_DIR (folder, seen by the user as shown_folder); limits: .env's;
    groups: hubstack.common.groups.Groups (none: nobody is in a group of the operator's)."""
    base = Profile(DEFAULT, "The standard server", limits.mem_bytes, limits.cpus, limits.pids, default=True)
    groups = groups or Groups()
    path, shown = Path(folder) / PROFILES_FILE, f"{shown_folder}/{PROFILES_FILE}"
    if not path.is_file():
        return Profiles((base,), groups)
    data = read_toml(path, shown)
    tables = data.get("profiles")
    if not isinstance(tables, dict) or not tables:
        raise SettingsError(f"{shown} declares no profile: add one, e.g. [profiles.standard] with a description")
    unknown = sorted(set(data) - {"profiles"})
    if unknown:
        raise SettingsError(f"{shown} has [{unknown[0]}], which is not known: every table is [profiles.<name>]")
    profiles = tuple(read_profile(shown, name, table, base) for name, table in tables.items())
    defaults = [p.name for p in profiles if p.default]
    if len(profiles) == 1 and not defaults:
        profiles = (replace(profiles[0], default=True),)
    elif len(defaults) != 1:
        said = "none is" if not defaults else f"{', '.join(defaults)} are"
        raise SettingsError(f"{shown}: exactly one profile must say default = true ({said})")
    if profiles[[p.default for p in profiles].index(True)].groups:
        raise SettingsError(f"{shown}: the default profile is for everyone: remove its groups")
    return Profiles(profiles, groups)


def read_profile(shown, name, table, base):
    where = f"{shown}: profile {name!r}"
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table: [profiles.{name}]")
    if not SAFE_NAME.fullmatch(name):
        raise SettingsError(
            f"{shown}: {name!r} is not a profile name: use lower-case letters, digits, '.', '_' or '-', e.g. large"
        )
    unknown = sorted(set(table) - PROFILE_KEYS)
    if unknown:
        raise SettingsError(f"{where} has {unknown[0]!r}, which is not known: use {', '.join(sorted(PROFILE_KEYS))}")

    def value(key, kind, what):
        found = table.get(key)
        if found is not None and (not isinstance(found, kind) or isinstance(found, bool) and kind is not bool):
            raise SettingsError(f"{where}: {key} must be {what}")
        return found

    description = value("description", str, 'text in quotes, e.g. "8 GB for whole-genome work"')
    if not description or not description.strip():
        raise SettingsError(f'{where} needs a description, e.g. description = "8 GB for whole-genome work"')
    memory = value("memory", str, 'a size in quotes, e.g. "8G"')
    database_memory = value("database_memory", str, 'a size in quotes, e.g. "256M"')
    cpus = value("cpus", (int, float), "a number, e.g. 2")
    pids = value("pids", int, "a whole number, e.g. 1024")
    image = value("image", str, 'an image name in quotes, e.g. "hubstack-notebook-gpu"') or ""
    if image and (any(c.isspace() for c in image) or image.startswith("-")):
        raise SettingsError(f"{where} has image = {image!r}, which is not an image name")
    groups = value("groups", list, 'a list of group names, e.g. ["genomics"]') or []
    if not all(isinstance(g, str) and SAFE_NAME.fullmatch(g) for g in groups):
        raise SettingsError(f'{where}: groups must be group names, e.g. ["genomics"]')
    return Profile(
        name=name,
        description=description.strip(),
        mem_bytes=parse.memory(f"{where}: memory", memory) if memory else base.mem_bytes,
        cpus=parse.number(f"{where}: cpus", str(cpus), 0.1, 256, example="2") if cpus is not None else base.cpus,
        pids=parse.number(f"{where}: pids", str(pids), 64, 1_000_000, int, "1024") if pids is not None else base.pids,
        image=image,
        database=bool(value("database", bool, "true or false")),
        database_mem_bytes=(
            parse.memory(f"{where}: database_memory", database_memory) if database_memory else DEFAULT_DATABASE_MEMORY
        ),
        groups=tuple(groups),
        default=bool(value("default", bool, "true or false")),
    )


class Refused(ValueError):
    """A spawn asked for what this researcher may not have; the message says what they may."""


def choose(profiles, user, hub_groups, options):
    """The profile that a spawn's options (from the form or the API) ask for, if this user may have it.

    Only a profile's name can be chosen: any other option (an image, a size) is refused, as is a
    profile that does not exist or is not open to the user's groups. No choice: the user's default.
    """
    options = dict(options or {})
    forged = sorted(set(options) - {"profile"})
    if forged:
        raise Refused(f"only a profile can be chosen, not {forged[0]!r}: start the server from the hub's form")
    offered = profiles.offered(user, hub_groups)
    if not offered:
        raise Refused("no server profile is open to you: ask the hub's operator which group you need")
    name = options.get("profile")
    if isinstance(name, list) and len(name) == 1:
        name = name[0]
    if name is None:
        return offered[0]
    if not isinstance(name, str):
        raise Refused("the profile must be one name: start the server from the hub's form")
    chosen = profiles.get(name)
    if chosen is None or chosen not in offered:
        listed = ", ".join(p.name for p in offered)
        why = "there is no such profile" if chosen is None else f"it is for {' or '.join(chosen.groups)} only"
        raise Refused(f"the profile {name[:64]!r} is not open to you ({why}): choose one of {listed}")
    return chosen


def form_html(offered):
    """The spawn page's choice (inside JupyterHub's own form and its Start button); the default checked."""
    rows = []
    for profile in offered:
        name = html.escape(profile.name, quote=True)
        checked = " checked" if profile is offered[0] else ""
        rows.append(
            f'<div class="radio hubstack-profile" data-profile="{name}"><label>'
            f'<input type="radio" name="profile" value="{name}"{checked}> <strong>{name}</strong>: '
            f"{html.escape(profile.description)} <small>({html.escape(profile.summary)})</small></label></div>"
        )
    return '<fieldset class="hubstack-profiles"><legend>Server profile</legend>' + "".join(rows) + "</fieldset>"
