"""restic as hubstack uses it: the commands, the snapshots' tags, which snapshots a restore takes.

Pure functions; hubstack.backup runs the commands in the backup container.
Every snapshot of one `hubstack backup` run has the run's start as its time,
the instance as its host, and the tags

    hubstack, instance=<HUBSTACK_NAME>, run=<UTC time>, kind=hub
    hubstack, instance=<HUBSTACK_NAME>, run=<UTC time>, kind=home, user=<user name>

so that retention treats the snapshots of one run alike (restic groups them
by host and paths: the hub, and each home) and a restore takes the hub and
every home from the same run.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from .common.contract import RESTORE_TARGET
from .common.parse import SettingsError

HUB, HOME = "hub", "home"  # kind=
PRE = "pre"  # a first pass over a running server's home, without pausing it; forgotten after the paused pass


def run_of(moment=None):
    """A run's name, from its start: 2024-05-01T12:00:00Z."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def restic_time(run):
    """restic's --time for a run's snapshots (read as UTC: the container's time zone)."""
    return run.replace("T", " ").rstrip("Z")


def tags(instance, run, kind, user=None, pre=False):
    items = ["hubstack", f"instance={instance}", f"run={run}", f"kind={kind}"]
    if user is not None:
        items.append(f"user={user}")
    if pre:
        items.append(PRE)
    return ",".join(items)


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: str
    paths: tuple
    tags: dict  # the key=value tags
    flags: frozenset  # the other tags

    @classmethod
    def from_json(cls, data):
        pairs = [tag.partition("=") for tag in data.get("tags") or []]
        return cls(
            id=data["id"],
            time=data["time"],
            paths=tuple(data.get("paths") or ()),
            tags={key: value for key, equals, value in pairs if equals},
            flags=frozenset(key for key, equals, _ in pairs if not equals),
        )

    @property
    def short_id(self):
        return self.id[:8]

    @property
    def instance(self):
        return self.tags.get("instance")

    @property
    def run(self):
        return self.tags.get("run")

    @property
    def kind(self):
        return self.tags.get("kind")

    @property
    def user(self):
        return self.tags.get("user")

    @property
    def pre(self):
        return PRE in self.flags


def parse_snapshots(text):
    return [Snapshot.from_json(item) for item in json.loads(text or "[]")]


# -- the commands (arguments after `restic`) ---------------------------------------------------
def backup_args(instance, run, kind, paths, user=None, parent=None, excludes=(), pre=False):
    return [
        "backup",
        "--json",
        "--host",
        instance,
        "--time",
        restic_time(run),
        "--tag",
        tags(instance, run, kind, user, pre),
        *(["--parent", parent] if parent else []),
        *(f"--exclude={pattern}" for pattern in excludes),
        *paths,
    ]


def snapshots_args(instance=None):
    return ["snapshots", "--json", *(["--tag", f"instance={instance}"] if instance else [])]


def forget_args(instance, keep_args):
    """The retention policy over this instance's snapshots (grouped by restic per host and paths), then prune."""
    return ["forget", "--json", "--host", instance, "--tag", f"instance={instance}", *keep_args, "--prune"]


def restore_args(snapshot, include):
    return ["restore", snapshot.id, "--target", RESTORE_TARGET, "--include", include]


CHECK_ARGS = ["check", "--read-data"]  # the structure, then every pack read back and verified
STATS_ARGS = ["stats", "--json", "--mode", "raw-data"]  # what the repository stores, after deduplication
INIT_ARGS = ["init"]
CONFIG_ARGS = ["cat", "config"]  # answers only where a repository is
UNLOCK_ARGS = ["unlock"]  # removes stale locks only (of runs that were killed)


# -- which snapshots a restore takes --------------------------------------------------------
def latest(snapshots):
    return max(snapshots, key=lambda s: (s.time, s.run or "", s.id))


def ours(snapshots, instance):
    """The finished snapshots of an instance's runs (never a first pass)."""
    return [s for s in snapshots if s.instance == instance and s.run and s.kind in (HUB, HOME) and not s.pre]


def instances(snapshots):
    return sorted({s.instance for s in snapshots if s.instance and s.run})


def choose(snapshots, instance, snapshot=None, user=None):
    """(the hub's snapshot or None, [home snapshots]) that a restore takes.

    All of it: the hub from the newest run (or the run of `snapshot`, an id or
    a run), with every home of that run. One user: their newest home (or the
    one of that run). Raises SettingsError naming what is missing.
    """
    mine = ours(snapshots, instance)
    if not mine:
        others = instances(snapshots)
        raise SettingsError(
            f"the repository holds no backup of {instance}"
            + (f"; it holds {', '.join(others)}: name one with --from" if others else "")
        )
    run = None
    if snapshot:
        runs = {s.run for s in mine if s.id.startswith(snapshot) or s.run == snapshot}
        if len(runs) != 1:
            raise SettingsError(
                f"{'no' if not runs else 'more than one'} backup of {instance} matches {snapshot!r}: "
                "`hubstack backup list` shows them (give a run or a longer snapshot id)"
            )
        (run,) = runs
    where = f" in run {run}" if run else ""
    if user is not None:
        homes = [s for s in mine if s.kind == HOME and s.user == user and run in (None, s.run)]
        if not homes:
            raise SettingsError(f"no backup of the home of {user}{where}: `hubstack backup list` shows who is in each")
        return None, [latest(homes)]
    hubs = [s for s in mine if s.kind == HUB and run in (None, s.run)]
    if not hubs:
        raise SettingsError(f"no backup of the hub of {instance}{where}: that run did not finish")
    hub = latest(hubs)
    homes = {}
    for s in mine:
        if s.kind == HOME and s.run == hub.run and (s.user not in homes or latest([s, homes[s.user]]) is s):
            homes[s.user] = s
    return hub, [homes[name] for name in sorted(homes)]


def run_table(snapshots, instance):
    """[(run, hub snapshot id or '', [users])], newest run first: what `hubstack backup list` shows."""
    runs = {}
    for s in ours(snapshots, instance):
        hub, users = runs.setdefault(s.run, ["", []])
        if s.kind == HUB:
            runs[s.run][0] = s.short_id
        else:
            users.append(s.user)
    return [(run, hub, sorted(users)) for run, (hub, users) in sorted(runs.items(), reverse=True)]


# -- what restic says ---------------------------------------------------------------------
def message(line):
    """One of restic's --json lines (status, summary, error) as a dict, else None."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "message_type" in data else None


def size(count):
    """Bytes for people: 512 B, 12.3 MiB."""
    value = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024


def status_text(status):
    done, total = status.get("bytes_done", 0), status.get("total_bytes", 0)
    files = f"{status.get('files_done', 0)}/{status.get('total_files', 0)} files"
    return f"{status.get('percent_done', 0) * 100:5.1f}%  {size(done)} of {size(total)}, {files}"


def summary_text(summary):
    new, changed = summary.get("files_new", 0), summary.get("files_changed", 0)
    return (
        f"{summary.get('total_files_processed', 0)} files, {size(summary.get('total_bytes_processed'))} "
        f"({new} new, {changed} changed), {size(summary.get('data_added'))} added"
    )
