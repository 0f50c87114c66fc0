"""Backups: `hubstack backup` while researchers work, the instance destroyed and restored onto a
fresh one, and one researcher's home restored while another keeps working."""

import json
import re
import threading
import time

import requests

from helpers import NAME, REPO, instance_filter, run_hubstack
from hubclient import BrowserUser
from hubstack.common.contract import (
    BACKUP_CHECKOUT,
    BACKUP_HUB,
    BACKUP_KEYS,
    BACKUP_PASSWORD,
    BACKUP_REPOSITORY,
    COOKIE_SECRET,
    LABEL_ROLE,
    Role,
)

HOME = "/home/jovyan"
WRITER = (
    "import threading, time, os\n"
    "def write():\n"
    f"    with open('{HOME}/stream.log', 'w') as f:\n"
    "        i = 0\n"
    f"        while not os.path.exists('{HOME}/stop'):\n"
    "            f.write(f'{i}\\n'); f.flush(); i += 1; time.sleep(0.002)\n"
    "threading.Thread(target=write, daemon=True).start()"
)

# Lines written by the hub's own audit log, in the hub container, rotated every 32 KiB (about 140 lines).
AUDIT_WRITER = (
    "import sys, time\n"
    "from hubstack.common.contract import AUDIT_LOG\n"
    "from hubstack_hub.audit import AuditLog\n"
    "from hubstack_hub.decision import APPROVED, Decision\n"
    "log = AuditLog(AUDIT_LOG, max_bytes=32 * 1024, keep=50)\n"
    "count, pause, tag = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]\n"
    "for i in range(count):\n"
    "    log.write('backup-test', 'bkbob', Decision(APPROVED, 'test', 'a line of the backup test'), 0.001, n=i, tag=tag)\n"
    "    time.sleep(pause)\n"
)


def write_audit(docker_client, settings, count, pause, tag):
    hub = docker_client.containers.get(settings.names.hub_container)
    code, output = hub.exec_run(["python3", "-c", AUDIT_WRITER, str(count), str(pause), tag])
    assert code == 0, output.decode()


def sha256_in_home(user, kernel, path):
    out, error = user.run(
        kernel, f"import hashlib; print(hashlib.sha256(open('{HOME}/{path}', 'rb').read()).hexdigest())"
    )
    assert error is None, error
    return out.strip()


def lines_in_home(user, kernel, path):
    out, error = user.run(kernel, f"print(open('{HOME}/{path}').read().count(chr(10)))")
    assert error is None, error
    return int(out)


def paused_seconds(said, user):
    match = re.search(rf"home of {re.escape(user)}\s.*server paused ([0-9.]+) s", said)
    assert match, f"no pause reported for {user}:\n{said}"
    return float(match[1])


def audit_lines():
    return run_hubstack("access", "log", "-n", "1000000").stdout.splitlines()


def snapshot_files(docker_client, settings, folder, kind):
    """Paths in the newest snapshot of a kind, read with restic in the backup image."""
    output = docker_client.containers.run(
        settings.names.image("backup"),
        ["hubstack-backup", "restic", "ls", "--json", "latest", "--tag", f"instance={NAME},kind={kind}"],
        remove=True,
        network_mode="none",
        environment={"RESTIC_REPOSITORY": BACKUP_REPOSITORY},
        volumes={
            str(folder): {"bind": BACKUP_REPOSITORY, "mode": "ro"},
            str(REPO / "secrets" / BACKUP_PASSWORD): {"bind": f"{BACKUP_KEYS}/{BACKUP_PASSWORD}", "mode": "ro"},
        },
        labels=settings.names.labels(),
    )
    return {json.loads(line).get("path") for line in output.decode().splitlines()[1:] if line.startswith("{")}


# Every volume of an instance but the shared environment (a copy of an image) and datasets (the operator's data).
INSTANCE_DATA = (Role.HUB_DATA, Role.HOME, Role.TLS_DATA, Role.EGRESS_LOG, Role.BACKUP_CACHE)


def destroy(docker_client):
    """`hubstack down`, then every volume of the test instance with its data."""
    run_hubstack("down")
    for container in docker_client.containers.list(
        all=True, filters=instance_filter(NAME, **{LABEL_ROLE: Role.USER_SERVER})
    ):
        container.remove(force=True)
    for role in INSTANCE_DATA:
        for volume in docker_client.volumes.list(filters=instance_filter(NAME, **{LABEL_ROLE: role})):
            volume.remove()
    for role in INSTANCE_DATA:
        assert not docker_client.volumes.list(filters=instance_filter(NAME, **{LABEL_ROLE: role}))


def test_backup_while_researchers_work_then_restore_onto_a_destroyed_instance(hub, docker_client, settings, repository):
    env, folder = repository
    alice = BrowserUser.with_server(hub, "alice.bk@example.org")
    akernel = alice.start_kernel()["id"]
    _, error = alice.run(
        akernel,
        (
            "import os, json\n"
            f"os.makedirs('{HOME}/results', exist_ok=True)\n"
            f"open('{HOME}/results/data.bin', 'wb').write(os.urandom(3 * 2**20))\n"
            f"nb = json.load(open('{HOME}/demo.ipynb'))\n"
            "nb['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source': ['my notes before the backup']})\n"
            f"json.dump(nb, open('{HOME}/demo.ipynb', 'w'))"
        ),
    )
    assert error is None, error
    data_sha = sha256_in_home(alice, akernel, "results/data.bin")
    made = alice.api("POST", f"/users/{alice.me()['name']}/tokens", json={"note": "my analysis script"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    alice_created = alice.me()["created"]

    bob = BrowserUser.with_server(hub, "bkbob")
    bkernel = bob.start_kernel()["id"]
    _, error = bob.run(bkernel, WRITER)  # writes a line every few ms, through the backup
    assert error is None, error
    bob_created = bob.me()["created"]
    time.sleep(1)

    write_audit(docker_client, settings, 1500, 0, "before")
    before = audit_lines()
    assert len(before) >= 1500
    # The hub keeps writing (and rotating) its audit log through the backup.
    writer = threading.Thread(target=write_audit, args=(docker_client, settings, 2500, 0.005, "during"))
    writer.start()
    written_before = lines_in_home(bob, bkernel, "stream.log")
    said = said_backup = run_hubstack("backup", env=env).stdout
    print(said)
    written_after = lines_in_home(bob, bkernel, "stream.log")
    writer.join()
    assert written_after > written_before  # the writer lived through the pause
    bob_paused = paused_seconds(said, "bkbob")
    assert 0 < bob_paused < 10, said
    assert "database" in said and "online copy" in said and "audit log" in said
    after = audit_lines()
    # Without --with-secrets, the dev-mode cookie secret on the hub volume is not in the backup.
    files = snapshot_files(docker_client, settings, folder, "hub")
    assert f"{BACKUP_HUB}/jupyterhub.sqlite" in files and not any(f.endswith(COOKIE_SECRET) for f in files)

    destroy(docker_client)
    said = run_hubstack("restore", env=env).stdout
    print(said)
    assert re.search(r"the hub knows \d+ users", said)
    assert not list((REPO / ".hubstack").glob("restore-*"))  # the checkout's files were staged, then removed
    run_hubstack("up", "--dev")

    restored = audit_lines()  # the log as the restore left it: every line before the backup, whole, in order
    assert restored[: len(before)] == before
    assert after[: len(restored)] == restored
    assert any('"tag": "during"' in line for line in restored), "no line written during the backup was saved"
    assert int(re.search(r"audit log (\d+) lines", said_backup)[1]) == len(restored)

    alice = BrowserUser.with_server(hub, "alice.bk@example.org")
    assert alice.me()["created"] == alice_created  # the hub knows her: the same user, not a new one
    akernel = alice.start_kernel()["id"]
    assert sha256_in_home(alice, akernel, "results/data.bin") == data_sha
    demo = alice.contents("demo.ipynb").json()["content"]
    assert demo["cells"][-1]["source"] == "my notes before the backup"
    me = requests.get(f"{hub}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "alice.bk@example.org"  # her token came back too

    bob = BrowserUser.with_server(hub, "bkbob")
    assert bob.me()["created"] == bob_created
    stream = bob.contents("stream.log").json()["content"]
    numbers = stream.split("\n")
    assert stream.endswith("\n") and numbers[:-1] == [str(i) for i in range(len(numbers) - 1)]
    assert written_before <= len(numbers) - 1 <= written_after  # the file as it was at one moment of the backup


def test_one_home_restored_while_another_researcher_keeps_working(hub, docker_client, settings, repository):
    env, folder = repository
    carol = BrowserUser.with_server(hub, "bkcarol")
    ckernel = carol.start_kernel()["id"]
    _, error = carol.run(ckernel, f"open('{HOME}/notes.txt', 'w').write('version of the backup')")
    assert error is None, error
    dave = BrowserUser.with_server(hub, "bkdave")
    dkernel = dave.start_kernel()["id"]
    said = run_hubstack("backup", "--with-secrets", env=env).stdout
    assert "secrets/" in said
    files = snapshot_files(docker_client, settings, folder, "hub")
    assert {f"{BACKUP_CHECKOUT}/secrets/{COOKIE_SECRET}", f"{BACKUP_HUB}/{COOKIE_SECRET}"} <= files, files
    assert not any(f.endswith(BACKUP_PASSWORD) for f in files), "the repository's password is in its own backup"
    listed = run_hubstack("backup", "list", env=env).stdout
    assert "bkcarol" in listed.split("homes", 2)[1], listed  # in the newest run
    checked = run_hubstack("backup", "--check", env=env)
    assert "no errors" in checked.stdout, checked.stdout

    _, error = carol.run(
        ckernel, f"open('{HOME}/notes.txt', 'w').write('broken'); open('{HOME}/since.txt', 'w').write('new')"
    )
    assert error is None, error
    refused = run_hubstack("restore", "--user", "bkcarol", env=env, check=False)
    assert refused.returncode == 1 and "server of bkcarol runs" in refused.stderr, refused.stderr
    carol.stop_server()
    refused = run_hubstack("restore", "--user", "bkcarol", env=env, check=False)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr, refused.stderr

    server = docker_client.containers.get(f"{settings.names.user_prefix}-bkdave")
    started_at = server.attrs["State"]["StartedAt"]
    answers, failures, done = [], [], threading.Event()

    def keep_working():
        while not done.is_set():
            try:
                out, error = dave.run(dkernel, "print(6 * 7)", timeout=30)
                (answers if out.strip() == "42" and error is None else failures).append(out or error)
            except Exception as err:  # any failure of the neighbour's kernel counts
                failures.append(str(err))
            time.sleep(0.2)

    worker = threading.Thread(target=keep_working)
    worker.start()
    try:
        said = run_hubstack("restore", "--user", "bkcarol", "--overwrite", env=env).stdout
    finally:
        done.set()
        worker.join()
    assert "home of bkcarol" in said
    assert answers and not failures, failures
    server.reload()
    assert server.status == "running" and server.attrs["State"]["StartedAt"] == started_at  # never restarted

    carol.start_server()
    assert carol.contents("notes.txt").json()["content"] == "version of the backup"
    assert carol.contents("since.txt").json()["content"] == "new"  # nothing else was removed


def test_restore_refuses_a_running_hub(hub, repository):
    env, _ = repository
    refused = run_hubstack("restore", env=env, check=False)
    assert refused.returncode == 1 and "hubstack down" in refused.stderr and len(refused.stderr.splitlines()) == 1
