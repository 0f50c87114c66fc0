"""The operator's groups of researchers: `groups.toml` in HUBSTACK_ACCESS_DIR.

A group lists its members, and may have a shared folder: a volume mounted
read-write at /shared/<group> in the servers of its members (every server
runs as the same uid, so every member can write what another wrote). A
researcher's groups are the ones of this file that list them and the ones the
hub knows them in (the OIDC groups claim or GitHub teams, where the log-in
manages groups): a group may have no member here and still a folder.

    [groups.genomics]
    members = ["ann@example.org", "ben@example.org"]
    folder = true

Read when the hub starts; checked by `hubstack up` first, one line per mistake.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .contract import GROUPS_FILE, SHARED_MOUNT
from .datasets import SAFE_NAME
from .parse import SettingsError

GROUP_KEYS = {"members", "folder"}


@dataclass(frozen=True)
class Groups:
    members: dict = field(default_factory=dict)  # group -> frozenset of user names
    folders: tuple = ()  # the groups with a shared folder

    def of(self, user, hub_groups=()):
        """The user's groups: those of groups.toml that list them, and their groups in the hub."""
        return {g for g, people in self.members.items() if user in people} | set(hub_groups)

    def folders_of(self, user, hub_groups=()):
        """{group: mount point} of the shared folders this user gets."""
        mine = self.of(user, hub_groups)
        return {g: folder_mount(g) for g in self.folders if g in mine}


def folder_mount(group):
    return f"{SHARED_MOUNT}/{group}"


def read_toml(path, shown):
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{shown} is not valid TOML: {err}") from None
    except OSError as err:
        raise SettingsError(f"{shown} cannot be read: {err.strerror}") from None


def load(folder, shown_folder):
    path, shown = Path(folder) / GROUPS_FILE, f"{shown_folder}/{GROUPS_FILE}"
    if not path.is_file():
        return Groups()
    data = read_toml(path, shown)
    tables = data.get("groups", {})
    if set(data) - {"groups"} or not isinstance(tables, dict):
        raise SettingsError(f'{shown}: write each group as [groups.genomics] with members = ["ann@example.org"]')
    members, folders = {}, []
    for name, table in tables.items():
        where = f"{shown}: group {name!r}"
        if not SAFE_NAME.fullmatch(name):
            raise SettingsError(f"{shown}: {name!r} is not a group name: use lower-case letters, digits, '.', '_', '-'")
        if not isinstance(table, dict):
            raise SettingsError(f'{where} must be a table: [groups.{name}] with members = ["ann@example.org"]')
        unknown = sorted(set(table) - GROUP_KEYS)
        if unknown:
            raise SettingsError(f"{where} has {unknown[0]!r}, which is not known: use members, folder")
        people = table.get("members", [])
        if not isinstance(people, list) or not all(isinstance(p, str) and p.strip() for p in people):
            raise SettingsError(f'{where}: members must be a list of user names, e.g. ["ann@example.org"]')
        folder = table.get("folder", False)
        if not isinstance(folder, bool):
            raise SettingsError(f"{where}: folder must be true or false")
        members[name] = frozenset(p.strip().lower() for p in people)
        if folder:
            folders.append(name)
    return Groups(members, tuple(folders))
