"""`hubstack restore`: the whole instance, or one researcher's home, from `hubstack backup`'s snapshots.

The whole instance (the hub and every server stopped): the newest complete
run (one with its hub snapshot), or the one named. The backup's .env,
access/ and secrets/ go into the checkout where no such file is; then the hub
data volume and every home of that run, made if missing. One home: that
researcher's server stopped, everyone else at work. A volume that holds files
is written over only when told (files in the backup replace those there);
nothing is ever removed.
"""

import os
import shutil
import time
from pathlib import Path

import click
from docker.types import Mount

from . import engine, restic
from .backup import human_seconds
from .common.contract import (
    BACKUP_CHECKOUT,
    BACKUP_DATABASES,
    BACKUP_GROUPS,
    BACKUP_HOMES,
    BACKUP_HUB,
    HUB_DATA,
    HUB_DATABASE,
    RESTORE_TARGET,
    Role,
)
from .common.parse import SettingsError
from .errors import HubstackError

DATABASE_NAME = Path(HUB_DATABASE).relative_to(HUB_DATA)


class Restore:
    def __init__(self, backups):
        self.backups = backups  # hubstack.backup.Backups: the repository, its container, the instance
        self.echo = backups.echo

    @property
    def stack(self):
        return self.backups.stack

    @property
    def settings(self):
        return self.backups.settings

    @property
    def names(self):
        return self.backups.names

    @property
    def client(self):
        return self.backups.client

    @property
    def config(self):
        return self.backups.config

    def helper(self, mounts):
        return self.backups.helper(mounts)

    def servers_using(self, volume):
        return self.backups.servers_using(volume)

    def run(self, user=None, snapshot=None, source=None, overwrite=False, revoke_tokens=False):
        """Restore the whole instance (the newest complete run, or the one named) or one user's home."""
        self.backups.password_file()
        source = source or self.names.instance
        started = time.monotonic()
        with self.helper([]) as helper:
            _, out, _ = helper.restic(restic.snapshots_args())
        hub, homes = restic.choose(restic.parse_snapshots("\n".join(out)), source, snapshot, user)
        if hub is not None:
            self.refuse_a_running_instance()
            self.echo(f"restoring {source}'s run {hub.run} from {self.config.shown}: the hub and {len(homes)} homes")
            if self.stack.project / ".env" in self.restore_checkout(hub):
                self.backups.stack = self.reloaded_stack()  # the backup's .env may name the instance
                self.refuse_a_running_instance()
        else:
            self.echo(f"restoring the home of {user} from run {homes[0].run} ({homes[0].short_id})")
        report = self.restore_volumes(hub, homes, overwrite, revoke_tokens)
        report["seconds"] = time.monotonic() - started
        self.echo(
            click.style(
                f"restored {'the hub and ' if hub else ''}{len(homes)} home(s) into {self.names.instance} "
                f"in {human_seconds(report['seconds'])}"
                + ("; now `hubstack up`" if hub else f"; {user} can start their server"),
                fg="green",
            )
        )
        return report

    def reloaded_stack(self):
        from .stack import Instance, Stack

        settings = Instance(self.stack.project).settings(dev=self.settings.dev_mode)
        return Stack(self.stack.project, settings, client=self.client, echo=self.echo)

    def refuse_a_running_instance(self):
        hub = self.stack.hub
        if hub is not None and hub.status in ("running", "restarting", "paused"):
            raise HubstackError(
                f"the hub {hub.name} runs: stop it with `hubstack down` first (a restore replaces its database)"
            )
        servers = engine.user_containers(self.client, self.names)
        if servers:
            raise HubstackError(f"{len(servers)} user server(s) of {self.names.instance} run: `hubstack down` first")

    def restore_checkout(self, hub):
        """The backup's .env, access/ and secrets/ into the checkout, only where no such file is; those placed."""
        staging = self.stack.project / ".hubstack" / f"restore-{hub.short_id}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with self.helper([Mount(f"{RESTORE_TARGET}{BACKUP_CHECKOUT}", str(staging), type="bind")]) as helper:
                helper.restic(restic.restore_args(hub, BACKUP_CHECKOUT))
                helper.run(["chown", "-R", f"{os.getuid()}:{os.getgid()}", f"{RESTORE_TARGET}{BACKUP_CHECKOUT}"])
            project = self.stack.project
            secrets_dir, access_dir = self.settings.folders(project)
            placed, differ = place(
                staging, {".env": project / ".env", "access": access_dir, "secrets": secrets_dir}, private={"secrets"}
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for path in placed:
            self.echo(f"  restored {shown_path(path, project)}")
        for path in differ:
            self.echo(click.style(f"  kept yours: {shown_path(path, project)} differs from the backup's", fg="yellow"))
        return placed

    def restore_volumes(self, hub, homes, overwrite, revoke_tokens):
        names = self.names
        targets = []  # (label, volume, path in the container, snapshot)
        if hub is not None:
            engine.ensure_volume(self.client, names.hub_data_volume, names.labels(Role.HUB_DATA))
            targets.append(("hub", names.hub_data_volume, f"{RESTORE_TARGET}{BACKUP_HUB}", hub, BACKUP_HUB))
            for path in hub.paths:  # the group folders, backed up with the hub
                if path.startswith(f"{BACKUP_GROUPS}/"):
                    group = path.rsplit("/", 1)[-1]
                    volume = names.group_volume(group)
                    engine.ensure_volume(self.client, volume, names.labels(Role.GROUP_FOLDER, group=group))
                    targets.append((f"folder of {group}", volume, f"{RESTORE_TARGET}{path}", hub, path))
        for snap in homes:
            home_path = next(p for p in snap.paths if p.startswith(f"{BACKUP_HOMES}/"))
            escaped = home_path.rsplit("/", 1)[-1]
            volume = names.home_volume(escaped)
            if hub is None:
                running = self.servers_using(volume)
                if running:
                    raise HubstackError(
                        f"the server of {snap.user} runs ({running[0].name}): stop it first (the hub's admin page, "
                        "or File > Hub Control Panel in their JupyterLab); a home is restored only while nobody writes to it"
                    )
            engine.ensure_volume(self.client, volume, names.labels(Role.HOME, user=snap.user))
            targets.append((f"home of {snap.user}", volume, f"{RESTORE_TARGET}{home_path}", snap, home_path))
            database_path = f"{BACKUP_DATABASES}/{escaped}"
            if database_path in snap.paths:  # their profile's database, backed up with the home
                database = names.database_volume(escaped)
                engine.ensure_volume(self.client, database, names.labels(Role.DATABASE, user=snap.user))
                label = f"database of {snap.user}"
                targets.append((label, database, f"{RESTORE_TARGET}{database_path}", snap, database_path))
        mounts = [Mount(inside, volume, type="volume") for _, volume, inside, _, _ in targets]
        rows = []
        with self.helper(mounts) as helper:
            occupied = helper.step("occupied", *(inside for _, _, inside, _, _ in targets))
            full = [f"{label} ({volume})" for label, volume, inside, _, _ in targets if occupied.get(inside)]
            if full and not overwrite:
                raise SettingsError(
                    f"not empty: {', '.join(full)}; --overwrite writes the backup over them "
                    "(files in the backup replace those there, no other file is removed)"
                )
            for label, volume, inside, snap, path in targets:
                began = time.monotonic()
                if path == BACKUP_HUB:
                    helper.step("clear-journal", f"{inside}/{DATABASE_NAME}")
                helper.restic(restic.restore_args(snap, path))
                _, out, _ = helper.run(["du", "-sb", inside])
                size = int(out[-1].split()[0]) if out and out[-1].split()[0].isdigit() else 0
                row = {"label": label, "volume": volume, "snapshot": snap.short_id, "bytes": size}
                row["seconds"] = time.monotonic() - began
                extra = ""
                if path == BACKUP_HUB:
                    known = helper.step(
                        "restored-hub", f"{inside}/{DATABASE_NAME}", *(["--revoke-tokens"] if revoke_tokens else [])
                    )
                    row.update(known)
                    extra = f"; the hub knows {len(known['users'])} users" + (
                        f", {known['revoked_tokens']} of their API tokens revoked" if revoke_tokens else ""
                    )
                self.echo(f"  {label:<34} {restic.size(size)} into {volume} in {human_seconds(row['seconds'])}{extra}")
                rows.append(row)
        return {"restored": rows}


def shown_path(path, project):
    try:
        return str(Path(path).relative_to(project))
    except ValueError:
        return str(path)


def place(staging, targets, private=()):
    """Copy each file under staging/<name> to targets[name] (a file or a folder) where nothing is yet.

    Never replaces a file: one that exists and differs is left and reported.
    Folders named in private are made mode 700. Returns ([placed], [differing]).
    """
    placed, differ = [], []
    for name, target in targets.items():
        source = Path(staging) / name
        if source.is_file():
            pairs = [(source, Path(target))]
        elif source.is_dir():
            pairs = [(path, Path(target) / path.relative_to(source)) for path in sorted(source.rglob("*"))]
        else:
            continue
        for origin, destination in pairs:
            if origin.is_dir() or origin.is_symlink():
                continue
            if destination.exists():
                if destination.read_bytes() != origin.read_bytes():
                    differ.append(destination)
                continue
            mode = 0o700 if name in private else 0o755
            destination.parent.mkdir(mode=mode, parents=True, exist_ok=True)
            shutil.copy2(origin, destination)
            placed.append(destination)
    return placed, differ
