"""8. Backup and restore: N researchers with M MB each in their homes (default 10 x 100 MB).

Each researcher logs in, gets a server and writes M MB of random bytes (nothing
for restic to deduplicate or compress) through a kernel; their servers keep
running. Then, with a repository in a temporary folder:
- the first backup (every home new to the repository; each running server is
  read once while it works, then paused for a second pass over what changed);
- an incremental backup with nothing changed;
- an incremental backup after each researcher wrote 1% more (a new file);
- the whole instance destroyed (`hubstack down`, its hub data and home volumes
  removed) and restored, then `hubstack up`, and one file read back;
- one researcher's home restored over itself.
Times, bytes read and added, the repository's size and each server's pause.
Only on the benchmarks' own instance: the restore destroys its volumes.
"""

import statistics
import tempfile
import time
from pathlib import Path

from hubclient import BrowserUser
from hubstack.backup import Backups
from hubstack.common.contract import LABEL_ROLE, USER_HOME, Role
from hubstack.restore import Restore
from hubstack.stack import Instance, Stack

from . import report
from .stack import BENCH_NAME


def write(user, name, megabytes):
    """megabytes of random bytes into the home, through the kernel; their sha256."""
    kernel = user.start_kernel()["id"]
    out, error = user.run(
        kernel,
        (
            "import os, hashlib\n"
            f"data = os.urandom({int(megabytes * 2**20)})\n"
            f"open('{USER_HOME}/{name}', 'wb').write(data)\n"
            "print(hashlib.sha256(data).hexdigest())"
        ),
        timeout=300,
    )
    if error:
        raise SystemExit(f"bench: writing into the home of {user.name} failed: {error}")
    return out.strip()


def row(label, result, seconds=None):
    rows = result.get("snapshots", [])
    pauses = [r["paused_seconds"] for r in rows if r.get("paused_seconds")]
    return {
        "step": label,
        "seconds": seconds if seconds is not None else result["seconds"],
        "read_mib": sum(r.get("bytes", 0) for r in rows) / 2**20,
        "added_mib": sum(r.get("added", 0) for r in rows) / 2**20,
        "repository_mib": result.get("repository_bytes", 0) / 2**20,
        "pause_median_s": statistics.median(pauses) if pauses else None,
        "pause_max_s": max(pauses) if pauses else None,
    }


def destroy(stack):
    """The benchmark instance's hub data and homes: its own data only."""
    stack.down()
    for volume in stack.client.volumes.list(filters=stack.names.label_filter()):
        if (volume.attrs["Labels"] or {}).get(LABEL_ROLE) in (Role.HUB_DATA, Role.HOME):
            volume.remove(force=True)


def run(stack, users=10, megabytes=100, echo=print):
    if stack.name != BENCH_NAME:
        raise SystemExit(f"bench: the backup benchmark destroys {stack.name}'s volumes: only {BENCH_NAME} may be")
    results = {"users": users, "megabytes_each": megabytes, "steps": []}
    with tempfile.TemporaryDirectory(prefix="hubstack-bench-backup-", ignore_cleanup_errors=True) as root:
        environ = {
            **stack.environ,
            "HUBSTACK_SECRETS_DIR": str(Path(root) / "secrets"),
            "HUBSTACK_BACKUP_REPOSITORY": str(Path(root) / "repository"),
        }
        settings = Instance(stack.project).settings(environ=environ)

        def backups():
            return Backups(Stack(stack.project, settings, stack.client, echo=lambda *_: None), echo=echo, live=False)

        backups().init()
        people, sums = [], {}
        for i in range(users):
            user = BrowserUser.with_server(stack.url, stack.user_name("bk", i))
            sums[user.name] = write(user, "data.bin", megabytes)
            people.append(user)
            echo(f"  {user.name}: {megabytes} MB written, server running")

        echo("  first backup:")
        results["steps"].append(row("first backup", backups().backup()))
        echo("  incremental backup, nothing changed:")
        results["steps"].append(row("incremental, no change", backups().backup()))
        for user in people:
            write(user, "more.bin", megabytes / 100)
        echo(f"  incremental backup after {megabytes / 100:g} MB more each:")
        last = backups().backup()
        results["steps"].append(row("incremental, 1% new", last))
        results["pauses_s"] = {r["user"]: r["paused_seconds"] for r in last["snapshots"] if r["kind"] == "home"}

        destroy(stack)
        echo("  instance destroyed; restoring everything:")
        started = time.monotonic()
        restored = Restore(backups()).run()
        restore_s = time.monotonic() - started
        results["steps"].append(
            {
                "step": "restore, everything",
                "seconds": restore_s,
                "read_mib": sum(r["bytes"] for r in restored["restored"]) / 2**20,
            }
        )
        stack.up()
        check = BrowserUser.with_server(stack.url, people[0].name)
        out, _ = check.run(
            check.start_kernel()["id"],
            f"import hashlib; print(hashlib.sha256(open('{USER_HOME}/data.bin', 'rb').read()).hexdigest())",
        )
        results["restored_bytes_match"] = out.strip() == sums[check.name]
        check.stop_server()
        echo(f"  one home restored over itself ({check.name}):")
        started = time.monotonic()
        one = Restore(backups()).run(user=check.name, overwrite=True)
        results["steps"].append(
            {
                "step": "restore, one home",
                "seconds": time.monotonic() - started,
                "read_mib": one["restored"][0]["bytes"] / 2**20,
            }
        )
    echo(
        report.table(
            f"Backup and restore: {users} researchers x {megabytes} MB of random bytes, servers running",
            ["step", "seconds", "read MiB", "added MiB", "repository MiB", "pause median s", "pause max s"],
            [
                [
                    s["step"],
                    s["seconds"],
                    s.get("read_mib"),
                    s.get("added_mib"),
                    s.get("repository_mib"),
                    s.get("pause_median_s"),
                    s.get("pause_max_s"),
                ]
                for s in results["steps"]
            ],
        )
    )
    echo(f"restored bytes identical: {results['restored_bytes_match']}")
    return results
