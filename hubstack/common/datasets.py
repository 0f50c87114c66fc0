"""The operator's datasets: `datasets.toml` in HUBSTACK_ACCESS_DIR, beside approvals.csv.

Each dataset is a host folder or an existing Docker volume, mounted read-only
at /data/<name> in the servers of the researchers it is granted to, and says
what grants it: `open` (everyone who may log in), `registry` (the DACO-style
registry's approval, optionally with its cloud-access flag), `list` (a line of
approvals.csv with this dataset in its `dataset` column) or `passport` (a GA4GH
visa whose value is the dataset's identifier). README.md, 'Datasets', has a
full example. Read on the host by the CLI (which also checks the folders) and
in the hub (which checks the volumes), with one-line errors that say what to fix.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import parse
from .contract import DATA_MOUNT, DATASETS_FILE, LABEL_INSTANCE, LABEL_ROLE, Role
from .parse import SettingsError

GRANTS = ("open", "registry", "list", "passport")
VISA_BY = ("dac", "so", "system", "peer", "self")  # the spec's values of ga4gh_visa_v1.by
SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")  # a path component, a Docker volume name's tail
VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")  # Docker's own rule
DATASET_KEYS = {"title", "description", "folder", "volume", "grant", "key", "cloud_access", "mount"}
RESERVED = {"readme"}  # /data/README tells the researcher what they have


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    description: str
    grant: str  # one of GRANTS
    folder: str = ""  # a host folder (absolute path), or
    volume: str = ""  # an existing Docker volume
    key: str = ""  # list: the approvals.csv dataset column; passport: the visa value
    cloud_access: bool = False  # registry: also require the cloud-access flag
    mount: str = ""  # the folder under /data

    @property
    def mount_point(self):
        return f"{DATA_MOUNT}/{self.mount}"

    def volume_name(self, names):
        """The Docker volume mounted for it: the operator's, or the one the CLI binds to its folder."""
        return self.volume or names.dataset_volume(self.name)

    @property
    def source(self):
        return f"folder {self.folder}" if self.folder else f"volume {self.volume}"


@dataclass(frozen=True)
class Passports:
    issuers: dict = field(default_factory=dict)  # trusted iss -> the jku of its keys
    allowed_by: frozenset = frozenset({"dac"})
    clock_skew: int = 60


@dataclass(frozen=True)
class Catalogue:
    datasets: tuple = ()
    passports: Passports = Passports()

    def grants(self, kind):
        return [d for d in self.datasets if d.grant == kind]


def text(where, table, key, default=None):
    value = table.get(key, default)
    if not isinstance(value, str):
        raise SettingsError(f"{where}: {key} must be a string in quotes")
    return value.strip()


def read_dataset(shown, name, table, check_folders):
    where = f"{shown}: dataset {name!r}"
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table: [datasets.{name}]")
    if not SAFE_NAME.fullmatch(name) or name in RESERVED:
        raise SettingsError(
            f"{shown}: {name!r} is not a dataset name: use lower-case letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit), e.g. icgc-pcawg"
        )
    unknown = sorted(set(table) - DATASET_KEYS)
    if unknown:
        raise SettingsError(f"{where} has {unknown[0]!r}, which is not known: use {', '.join(sorted(DATASET_KEYS))}")
    grant = text(where, table, "grant", "")
    if grant not in GRANTS:
        raise SettingsError(f"{where} has grant = {grant!r}: use one of {', '.join(GRANTS)}")
    folder, volume = text(where, table, "folder", ""), text(where, table, "volume", "")
    if bool(folder) == bool(volume):
        raise SettingsError(
            f'{where} needs exactly one source: folder = "/absolute/host/path" or volume = "existing-volume"'
        )
    if folder:
        if not folder.startswith("/") or any(c.isspace() or c in ":$," for c in folder) or "/../" in f"{folder}/":
            raise SettingsError(f"{where} has folder = {folder!r}: use an absolute host path without spaces or ':'")
        if check_folders and not Path(folder).is_dir():
            raise SettingsError(
                f"{where}: the folder {folder} does not exist on this machine: create it or fix the path"
            )
    if volume and not VOLUME_NAME.fullmatch(volume):
        raise SettingsError(f"{where} has volume = {volume!r}, which is not a Docker volume name")
    key = text(where, table, "key", "")
    if grant == "list":
        key = key or name
        if not SAFE_NAME.fullmatch(key):
            raise SettingsError(f"{where} has key = {key!r}: the approvals.csv dataset column takes a dataset name")
    elif grant == "passport":
        if not key or len(key) > 255:
            raise SettingsError(f"{where} needs key = the identifier its visas carry as value (at most 255 characters)")
    elif key:
        raise SettingsError(f"{where}: key only applies to grant = list or passport (now {grant}): remove it")
    cloud_access = table.get("cloud_access", False)
    if not isinstance(cloud_access, bool):
        raise SettingsError(f"{where}: cloud_access must be true or false")
    if cloud_access and grant != "registry":
        raise SettingsError(f"{where}: cloud_access only applies to grant = registry (now {grant}): remove it")
    mount = text(where, table, "mount", name)
    if not SAFE_NAME.fullmatch(mount) or mount in RESERVED:
        raise SettingsError(f"{where} has mount = {mount!r}: use a folder name such as {name}")
    return Dataset(
        name=name,
        title=text(where, table, "title", name) or name,
        description=text(where, table, "description", ""),
        grant=grant,
        folder=folder,
        volume=volume,
        key=key,
        cloud_access=cloud_access,
        mount=mount,
    )


def read_passports(shown, table):
    where = f"{shown}: [passports]"
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table")
    unknown = sorted(set(table) - {"issuers", "allowed_by", "clock_skew_seconds"})
    if unknown:
        raise SettingsError(f"{where} has {unknown[0]!r}: use issuers, allowed_by, clock_skew_seconds")
    issuers = {}
    for entry in table.get("issuers", []):
        if not isinstance(entry, dict) or set(entry) != {"iss", "jku"}:
            raise SettingsError(f'{where}: each of issuers is {{ iss = "https://...", jku = "https://.../jwks" }}')
        iss = text(where, entry, "iss")
        issuers[iss] = parse.url(f"{shown} [passports] jku of {iss}", text(where, entry, "jku"))
    by = table.get("allowed_by", ["dac"])
    if not isinstance(by, list) or not by or any(b not in VISA_BY for b in by):
        raise SettingsError(f'{where}: allowed_by must be a list of {", ".join(VISA_BY)} (default ["dac"])')
    skew = table.get("clock_skew_seconds", 60)
    if not isinstance(skew, int) or isinstance(skew, bool) or not 0 <= skew <= 600:
        raise SettingsError(f"{where}: clock_skew_seconds must be a whole number from 0 to 600 (default 60)")
    return Passports(issuers=issuers, allowed_by=frozenset(by), clock_skew=skew)


def load(access_dir, shown_dir="access", check_folders=True):
    """The Catalogue in access_dir/datasets.toml (empty if there is none)."""
    path = Path(access_dir) / DATASETS_FILE
    shown = f"{str(shown_dir).rstrip('/')}/{DATASETS_FILE}"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Catalogue()
    except (OSError, UnicodeDecodeError) as err:
        raise SettingsError(f"cannot read {shown}: {getattr(err, 'strerror', None) or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{shown} is not valid TOML ({err}): see README.md, 'Datasets'") from None
    unknown = sorted(set(raw) - {"datasets", "passports"})
    if unknown:
        raise SettingsError(f"{shown} has [{unknown[0]}]: use [datasets.NAME] and [passports]")
    tables = raw.get("datasets", {})
    if not isinstance(tables, dict):
        raise SettingsError(f"{shown}: datasets must be tables: [datasets.NAME]")
    datasets = tuple(read_dataset(shown, name, table, check_folders) for name, table in tables.items())
    seen = {}
    for dataset in datasets:
        if dataset.mount in seen:
            raise SettingsError(
                f"{shown}: datasets {seen[dataset.mount]!r} and {dataset.name!r} both mount at {dataset.mount_point}: "
                "give one another mount"
            )
        seen[dataset.mount] = dataset.name
    passports = read_passports(shown, raw.get("passports", {}))
    if any(d.grant == "passport" for d in datasets) and not passports.issuers:
        raise SettingsError(f"{shown}: a dataset has grant = passport but [passports] lists no trusted issuers")
    return Catalogue(datasets=datasets, passports=passports)


def check_sources(catalogue, login, shown="access/datasets.toml"):
    """Production: every grant has its approval source. login is None in dev mode (only open datasets mount)."""
    if login is None:
        return
    for dataset in catalogue.datasets:
        needed = {"registry": "registry", "list": "list"}.get(dataset.grant)
        if needed and needed not in login.sources:
            raise SettingsError(
                f"{shown}: dataset {dataset.name!r} has grant = {needed}, but HUBSTACK_ACCESS_SOURCES "
                f"({','.join(login.sources)}) does not ask the {needed}: add it, or change the grant"
            )
        if dataset.grant == "passport" and login.provider != "oidc":
            raise SettingsError(
                f"{shown}: dataset {dataset.name!r} has grant = passport, which needs HUBSTACK_OAUTH_PROVIDER=oidc "
                "(an OpenID Connect provider that sends ga4gh_passport_v1)"
            )


def check_volumes(catalogue, names, inspect):
    """Every dataset's volume exists and is what datasets.toml says; inspect(volume) -> its attributes or None."""
    for dataset in catalogue.datasets:
        volume = dataset.volume_name(names)
        where = f"dataset {dataset.name!r}"
        attrs = inspect(volume)
        if attrs is None:
            if dataset.folder:
                raise SettingsError(
                    f"{where}: the volume {volume} that binds {dataset.folder} does not exist: "
                    "run `hubstack up`, which makes it"
                )
            raise SettingsError(
                f"{where}: the Docker volume {volume} does not exist: create and fill it, or fix datasets.toml"
            )
        labels = attrs.get("Labels") or {}
        if LABEL_INSTANCE in labels and labels.get(LABEL_ROLE) != Role.DATASET:
            raise SettingsError(
                f"{where}: the volume {volume} is hubstack's own ({labels.get(LABEL_ROLE)} of "
                f"{labels[LABEL_INSTANCE]}), never a dataset: name the volume that holds the data"
            )
        device = (attrs.get("Options") or {}).get("device")
        if dataset.folder and device != dataset.folder:
            raise SettingsError(
                f"{where}: the volume {volume} binds {device}, not {dataset.folder}: run `hubstack up`, "
                "which binds it again"
            )
