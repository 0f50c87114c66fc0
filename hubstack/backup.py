"""`hubstack backup` and `hubstack restore`: restic in a throwaway container beside the volumes.

A backup run, while the hub runs and researchers work (README.md, "Backups"):
- each home volume (with the user's database volume, if their profile has
  one), read-only, one snapshot. When a server uses it, a first
  pass reads it while the researcher works; then the server is paused (`docker
  pause` freezes its processes; nothing is lost, requests wait) for a second
  pass that reads only what changed since, so that the snapshot is the volume
  as it was at one moment. How long each server was paused is reported. A
  database sidecar is paused with its server: its files are then as after a
  power cut, which InnoDB recovers from at the next start.
- the hub last, one snapshot: the hub data volume staged in the container (the
  database by SQLite's online backup, the audit log's whole lines, the rest as
  it is), with the checkout's .env and access/ (and secrets/ when asked), and
  every group folder as it is (no server is paused for those: every member's
  would be; a file being written at that moment may be caught half-written). A
  run with a hub snapshot is complete, and a restore takes one of those.
- then the retention policy (HUBSTACK_BACKUP_KEEP) and a prune.

`hubstack restore` (hubstack.restore) uses the same container.
"""

import contextlib
import json
import os
import secrets
import signal
import sys
import time

import click
from docker.errors import APIError, NotFound
from docker.types import Mount

from . import engine, restic
from .common.contract import (
    BACKUP_CACHE,
    BACKUP_CHECKOUT,
    BACKUP_DATABASES,
    BACKUP_ENVIRONMENT,
    BACKUP_GROUPS,
    BACKUP_HOMES,
    BACKUP_HUB,
    BACKUP_HUB_VOLUME,
    BACKUP_KEYS,
    BACKUP_PASSWORD,
    BACKUP_REPOSITORY,
    LABEL_GROUP,
    LABEL_USER,
    Role,
)
from .common.login import read_secret
from .common.parse import SettingsError
from .errors import HubstackError
from .images import BACKUP

SECRETS_IN_CHECKOUT = f"{BACKUP_CHECKOUT}/secrets"
NEVER_IN_A_BACKUP = (f"{SECRETS_IN_CHECKOUT}/{BACKUP_PASSWORD}", f"{SECRETS_IN_CHECKOUT}/{BACKUP_ENVIRONMENT}")


class BackupError(HubstackError):
    """restic or a step in the backup container failed."""


@contextlib.contextmanager
def terminated_as_exit():
    """SIGTERM unwinds like Ctrl-C, so that a paused server is always resumed and the container removed."""

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Helper:
    """The running backup container: steps and restic by `docker exec`, their output line by line."""

    def __init__(self, client, container, environment, repository_shown, password_shown):
        self.client, self.container, self.environment = client, container, environment
        self.repository_shown, self.password_shown = repository_shown, password_shown

    def run(self, argv, on_line=None):
        """(exit code, stdout lines, stderr lines)."""
        api = self.client.api
        exec_id = api.exec_create(self.container.id, argv, environment=self.environment)["Id"]
        out, err, pending = [], [], {0: b"", 1: b""}
        for chunks in api.exec_start(exec_id, stream=True, demux=True):
            for index, chunk in enumerate(chunks):
                if not chunk:
                    continue
                *lines, pending[index] = (pending[index] + chunk).split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace")
                    (out if index == 0 else err).append(text)
                    if index == 0 and on_line:
                        on_line(text)
        for index, rest in pending.items():
            if rest:
                (out if index == 0 else err).append(rest.decode(errors="replace"))
        return api.exec_inspect(exec_id)["ExitCode"], out, err

    def restic(self, args, on_line=None, allow=(0,)):
        code, out, err = self.run(["hubstack-backup", "restic", *args], on_line)
        if code not in allow:
            raise BackupError(f"restic {args[0]} failed: {self.explain(err)}")
        return code, out, err

    def step(self, *argv):
        """A hubstack-backup step's result (its last line, JSON)."""
        code, out, err = self.run(["hubstack-backup", *argv])
        if code != 0 or not out:
            raise BackupError(self.explain(err) if err else f"hubstack-backup {argv[0]} failed (exit {code})")
        return json.loads(out[-1])

    def explain(self, err):
        said = [line for line in err if line.strip()]
        text = " ".join(said)
        if "Is there a repository at the following location?" in text:
            return f"no restic repository at {self.repository_shown}: run `hubstack backup init`"
        if "wrong password" in text:
            return f"the password in {self.password_shown} does not open the repository at {self.repository_shown}"
        last = said[-1] if said else "no message"
        return last.removeprefix("Fatal: ")[:300]


def human_seconds(seconds):
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


def check_ready(settings, project, password=True):
    """Before the engine is asked anything: a repository is named and (unless making it) its password is there."""
    if not settings.backup.configured:
        raise SettingsError(
            "HUBSTACK_BACKUP_REPOSITORY is not set: name a folder (e.g. /srv/backups/hub, better on another disk) "
            "or a restic URL in .env, then run `hubstack backup init`"
        )
    if password:
        read_secret(
            settings.folders(project)[0],
            BACKUP_PASSWORD,
            settings.shown_secrets_dir,
            "it opens the backup repository: run `hubstack backup init`, or on a new host copy in the one you kept",
        )
    return settings.folders(project)[0] / BACKUP_PASSWORD


class Backups:
    def __init__(self, stack, echo=click.echo, live=None):
        self.stack = stack
        self.client = stack.client
        self.echo = echo
        self.live = sys.stdout.isatty() if live is None else live  # progress on one line that updates
        self.config = stack.settings.backup

    @property
    def settings(self):
        return self.stack.settings

    @property
    def names(self):
        return self.stack.settings.names

    # -- the repository and its password ---------------------------------------------------
    def require_repository(self):
        check_ready(self.settings, self.stack.project, password=False)

    @property
    def secrets_dir(self):
        return self.settings.folders(self.stack.project)[0]

    @property
    def password_shown(self):
        return f"{self.settings.shown_secrets_dir}/{BACKUP_PASSWORD}"

    def password_file(self):
        """The repository's password file, checked like every secret (present, not empty, mode 600)."""
        return check_ready(self.settings, self.stack.project)

    def ensure_image(self):
        if engine.image_or_none(self.client, self.names.image(BACKUP.role)) is None:
            self.echo(f"the backup image {self.names.image(BACKUP.role)} is not built yet; building it")
            self.stack.build(images=[BACKUP])

    def base_mounts(self):
        mounts = [
            Mount(f"{BACKUP_KEYS}/{BACKUP_PASSWORD}", str(self.password_file().resolve()), type="bind", read_only=True),
            Mount(BACKUP_CACHE, self.cache_volume(), type="volume"),
        ]
        credentials = self.secrets_dir / BACKUP_ENVIRONMENT
        if credentials.is_file():
            mounts.append(
                Mount(f"{BACKUP_KEYS}/{BACKUP_ENVIRONMENT}", str(credentials.resolve()), type="bind", read_only=True)
            )
        folder = self.config.folder_path(self.stack.project)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(BACKUP_REPOSITORY, str(folder), type="bind"))
        return mounts

    def cache_volume(self):
        name = self.names.backup_cache_volume
        engine.ensure_volume(self.client, name, self.names.labels(Role.BACKUP_CACHE))
        return name

    @contextlib.contextmanager
    def helper(self, mounts):
        """The backup container with these mounts (and the repository's), removed afterwards."""
        self.require_repository()
        self.ensure_image()
        folder = self.config.folder_path(self.stack.project)
        name = self.names.backup_container
        # A folder needs no network; a URL is reached as from this host. restic tells its own stale
        # locks (of a run that was killed) by host name and process: the same host name every time.
        network = {"network_mode": "none", "hostname": name} if folder is not None else {"network_mode": "host"}
        try:
            container = self.client.containers.run(
                self.names.image(BACKUP.role),
                detach=True,
                name=name,
                labels=self.names.labels(Role.BACKUP),
                mounts=[*self.base_mounts(), *mounts],
                **network,
            )
        except APIError as err:
            if err.status_code == 409:
                raise BackupError(
                    f"a backup or restore of {self.names.instance} is running (container {name}); "
                    f"if none is, remove it: docker rm -f {name}"
                ) from None
            raise
        environment = {
            "RESTIC_REPOSITORY": BACKUP_REPOSITORY if folder is not None else self.config.repository,
            "RESTIC_CACHE_DIR": BACKUP_CACHE,
            "RESTIC_PROGRESS_FPS": "2",
            "TZ": "UTC",
        }
        try:
            with terminated_as_exit():
                yield Helper(self.client, container, environment, self.config.shown, self.password_shown)
        finally:
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)

    # -- hubstack backup init -----------------------------------------------------------------
    def init(self):
        """Make the password (if missing) and the repository (if missing); [(what, 'created' | 'kept')]."""
        self.require_repository()
        self.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.secrets_dir / BACKUP_PASSWORD
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
            report = [(self.password_shown, "created")]
        except FileExistsError:
            report = [(self.password_shown, "kept")]
        with self.helper([]) as helper:
            code, _, _ = helper.run(["hubstack-backup", "restic", *restic.CONFIG_ARGS])
            if code == 0:
                report.append((f"repository {self.config.shown}", "kept"))
            else:
                helper.restic(restic.INIT_ARGS)
                report.append((f"repository {self.config.shown}", "created"))
        return report

    # -- hubstack backup ----------------------------------------------------------------------
    def home_volumes(self):
        """[(volume name, user name, escaped user name)] of this instance, by user name."""
        prefix = self.names.home_volume("")
        found = []
        for volume in engine.instance_volumes(self.client, self.names, Role.HOME):
            user = (volume.attrs.get("Labels") or {}).get(LABEL_USER)
            if user and volume.name.startswith(prefix):
                found.append((volume.name, user, volume.name[len(prefix) :]))
        return sorted(found, key=lambda row: row[1])

    def database_volumes(self):
        """{escaped user name: database volume} of this instance (profiles with database = true)."""
        prefix = self.names.database_volume("")
        return {
            volume.name[len(prefix) :]: volume.name
            for volume in engine.instance_volumes(self.client, self.names, Role.DATABASE)
            if volume.name.startswith(prefix) and (volume.attrs.get("Labels") or {}).get(LABEL_USER)
        }

    def group_volumes(self):
        """{group: its folder's volume} of this instance."""
        return {
            (volume.attrs.get("Labels") or {}).get(LABEL_GROUP): volume.name
            for volume in engine.instance_volumes(self.client, self.names, Role.GROUP_FOLDER)
            if (volume.attrs.get("Labels") or {}).get(LABEL_GROUP)
        }

    def servers_using(self, volume, role=Role.USER_SERVER):
        """This instance's running user servers (or sidecars) that mount the volume (never the backup container)."""
        filters = {**self.names.label_filter(role), "volume": volume, "status": "running"}
        return self.client.containers.list(filters=filters)

    def checkout_mounts(self, with_secrets):
        project = self.stack.project
        secrets_dir, access_dir = self.settings.folders(project)
        mounts = []
        if (project / ".env").is_file():
            mounts.append(Mount(f"{BACKUP_CHECKOUT}/.env", str(project / ".env"), type="bind", read_only=True))
        if access_dir.is_dir():
            mounts.append(Mount(f"{BACKUP_CHECKOUT}/access", str(access_dir.resolve()), type="bind", read_only=True))
        if with_secrets and secrets_dir.is_dir():
            mounts.append(Mount(SECRETS_IN_CHECKOUT, str(secrets_dir.resolve()), type="bind", read_only=True))
        return mounts

    def snapshot(self, helper, label, args):
        """One `restic backup`, its progress on one line; restic's summary, with the seconds it took."""
        started = time.monotonic()
        summary = {}

        def on_line(line):
            said = restic.message(line)
            if not said:
                return
            if said["message_type"] == "summary":
                summary.update(said)
            elif said["message_type"] == "status" and self.live:
                self.echo(f"\r  {label:<34} {restic.status_text(said)}"[:118].ljust(118), nl=False)

        code, _, err = helper.restic(args, on_line, allow=(0, 3))
        if self.live:
            self.echo("\r" + " " * 118 + "\r", nl=False)
        if code == 3:  # a snapshot was made, but some files could not be read
            self.echo(click.style(f"  {label}: some files could not be read: {helper.explain(err)}", fg="yellow"))
        summary["seconds"] = time.monotonic() - started
        return summary

    def backup_home(self, helper, run, volume, user, escaped, database=None):
        paths = [f"{BACKUP_HOMES}/{escaped}"] + ([f"{BACKUP_DATABASES}/{escaped}"] if database else [])
        label = f"home of {user}" + (" and database" if database else "")
        servers = self.servers_using(volume)
        if database:
            servers += self.servers_using(database, Role.DATABASE_SIDECAR)
        row = {"kind": restic.HOME, "user": user, "volume": volume, "paused_seconds": 0.0, "first_pass_seconds": 0.0}
        parent, first = None, {}
        if servers:
            first = self.snapshot(
                helper,
                f"{label} (running)",
                restic.backup_args(self.names.instance, run, restic.HOME, paths, user, pre=True),
            )
            parent, row["first_pass_seconds"] = first["snapshot_id"], first["seconds"]
        paused = []
        started = time.monotonic()
        try:
            for server in servers:
                try:
                    server.pause()
                    paused.append(server)
                except APIError:  # stopped meanwhile, or paused by someone else: not ours to resume
                    pass
            summary = self.snapshot(
                helper, label, restic.backup_args(self.names.instance, run, restic.HOME, paths, user, parent)
            )
        finally:
            for server in paused:
                with contextlib.suppress(APIError):
                    server.unpause()
            if paused:
                row["paused_seconds"] = time.monotonic() - started
        if parent:
            helper.restic(["forget", parent])
        row.update(summary_row(summary))
        row["added"] += first.get("data_added", 0)  # most of a new home goes in with the first pass
        summary["data_added"] = row["added"]
        pause_text = f"; server paused {human_seconds(row['paused_seconds'])}" if paused else "; no server running"
        self.echo(f"  {label:<34} {restic.summary_text(summary)} in {human_seconds(summary['seconds'])}{pause_text}")
        return row

    def backup_hub(self, helper, run, with_secrets, groups):
        staged = helper.step("stage-hub", *(["--with-secrets"] if with_secrets else []))
        folders = [f"{BACKUP_GROUPS}/{group}" for group in sorted(groups)]
        args = restic.backup_args(
            self.names.instance, run, restic.HUB, [BACKUP_HUB, BACKUP_CHECKOUT, *folders], excludes=NEVER_IN_A_BACKUP
        )
        summary = self.snapshot(helper, "hub", args)
        row = {"kind": restic.HUB, "user": None, "volume": self.names.hub_data_volume, "paused_seconds": 0.0}
        row.update(summary_row(summary))
        row.update(staged)
        self.echo(
            f"  {'hub':<34} {restic.summary_text(summary)} in {human_seconds(summary['seconds'])}: "
            f"database {restic.size(staged['database_bytes'])} (online copy), "
            f"audit log {staged['audit_lines']} lines, .env, access/"
            + (", secrets/" if with_secrets else "")
            + (f", {len(groups)} group folder(s)" if groups else "")
        )
        return row

    def backup(self, with_secrets=False):
        """Back up the homes, then the hub, then apply the retention policy; the run's report."""
        self.require_repository()
        self.password_file()
        started = time.monotonic()
        run = restic.run_of()
        instance = self.names.instance
        if engine.volume_attributes(self.client, self.names.hub_data_volume) is None:
            raise SettingsError(f"nothing to back up: {instance} has no hub data volume (run `hubstack up` first)")
        homes = self.home_volumes()
        databases, groups = self.database_volumes(), self.group_volumes()
        mounts = [
            Mount(BACKUP_HUB_VOLUME, self.names.hub_data_volume, type="volume", read_only=True),
            *self.checkout_mounts(with_secrets),
            *(
                Mount(f"{BACKUP_HOMES}/{escaped}", volume, type="volume", read_only=True)
                for volume, _, escaped in homes
            ),
            *(
                Mount(f"{BACKUP_DATABASES}/{escaped}", databases[escaped], type="volume", read_only=True)
                for _, _, escaped in homes
                if escaped in databases
            ),
            *(
                Mount(f"{BACKUP_GROUPS}/{group}", volume, type="volume", read_only=True)
                for group, volume in groups.items()
            ),
        ]
        self.echo(f"backing up {instance} ({len(homes)} homes and the hub) to {self.config.shown}, run {run}")
        rows = []
        with self.helper(mounts) as helper:
            helper.restic(restic.CONFIG_ARGS)  # a missing repository or a wrong password: one line, before anything
            helper.restic(restic.UNLOCK_ARGS)
            for volume, user, escaped in homes:
                rows.append(self.backup_home(helper, run, volume, user, escaped, databases.get(escaped)))
            rows.append(self.backup_hub(helper, run, with_secrets, groups))
            self.forget_first_passes(helper)
            removed = self.apply_retention(helper)
            stats = self.stats(helper)
        report = {
            "run": run,
            "instance": instance,
            "snapshots": rows,
            "removed_snapshots": removed,
            "repository_bytes": stats.get("total_size", 0),
            "repository_snapshots": stats.get("snapshots_count", 0),
            "seconds": time.monotonic() - started,
        }
        read = sum(row["bytes"] for row in rows)
        added = sum(row["added"] for row in rows)
        longest = max((row["paused_seconds"] for row in rows), default=0)
        self.echo(
            click.style(
                f"backup {run} of {instance} done in {human_seconds(report['seconds'])}: {len(rows)} snapshots, "
                f"{restic.size(read)} read, {restic.size(added)} added; longest pause of a server "
                f"{human_seconds(longest)}; the repository holds {restic.size(report['repository_bytes'])} "
                f"in {report['repository_snapshots']} snapshots",
                fg="green",
            )
        )
        return report

    def forget_first_passes(self, helper):
        """First passes left behind by a run that was stopped halfway (each run forgets its own)."""
        _, out, _ = helper.restic(restic.snapshots_args(self.names.instance))
        leftovers = [s.id for s in restic.parse_snapshots("\n".join(out)) if s.pre]
        if leftovers:
            helper.restic(["forget", *leftovers])

    def apply_retention(self, helper):
        _, out, err = helper.restic(restic.forget_args(self.names.instance, self.config.keep_args()))
        groups = json.loads(out[-1]) if out and out[-1].startswith("[") else []
        removed = sum(len(group.get("remove") or []) for group in groups)
        freed = next((line.split(":", 1)[1].strip() for line in err if line.startswith("total prune:")), "")
        self.echo(
            f"  retention ({self.config.keep_text}): {removed} old snapshots removed"
            + (f", pruned {freed}" if removed and freed else "")
        )
        return removed

    def stats(self, helper):
        _, out, _ = helper.restic(restic.STATS_ARGS)
        return json.loads(out[-1]) if out else {}

    # -- hubstack backup --check / list ----------------------------------------------------------
    def check(self):
        """restic check --read-data, its lines as they come; raises when the repository has errors."""
        self.password_file()
        with self.helper([]) as helper:
            helper.restic(restic.UNLOCK_ARGS)
            code, _, err = helper.run(
                ["hubstack-backup", "restic", *restic.CHECK_ARGS], on_line=lambda line: self.echo(f"  {line}")
            )
            if code != 0:
                raise BackupError(f"the repository at {self.config.shown} has errors: {helper.explain(err)}")

    def list(self):
        """(runs of this instance [(run, hub id, users)], other instances, repository stats)."""
        self.password_file()
        with self.helper([]) as helper:
            _, out, _ = helper.restic(restic.snapshots_args())
            stats = self.stats(helper)
        snapshots = restic.parse_snapshots("\n".join(out))
        others = [name for name in restic.instances(snapshots) if name != self.names.instance]
        return restic.run_table(snapshots, self.names.instance), others, stats


def summary_row(summary):
    return {
        "snapshot": summary.get("snapshot_id", ""),
        "files": summary.get("total_files_processed", 0),
        "bytes": summary.get("total_bytes_processed", 0),
        "added": summary.get("data_added", 0),
        "new_files": summary.get("files_new", 0),
        "changed_files": summary.get("files_changed", 0),
        "seconds": summary.get("seconds", 0.0),
    }
