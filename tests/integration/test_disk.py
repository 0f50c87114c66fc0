"""One researcher cannot fill Docker's disk: the hub's database and audit log always have room.

The module restarts the test hub with disk settings (a small /tmp, a home
quota, a free-space threshold above what this disk has), and finally back to
the defaults the other modules use. Researchers write from their kernels, as
`dd if=/dev/zero of=~/fill` would.
"""

import json
import time

import pytest
import websocket

from helpers import INSTANCE_ENV, NAME, health_ok, run_hubstack, user_servers, wait_for
from hubclient import BrowserUser
from hubstack.common.settings import load

TMP_SIZE = 64 * 1024**2
QUOTA = "256M"

FILL = """
import errno, os
written, code = 0, None
try:
    with open({path!r}, 'wb') as f:
        while written < {limit}:
            written += f.write(b'\\0' * 2**20)
            f.flush()
        os.fsync(f.fileno())
except OSError as e:
    code = errno.errorcode[e.errno]
print(written // 2**20, code)
"""


def fill(user, kernel, path, limit=2**40):
    """Write zeros to path until the kernel refuses (or limit bytes): (MiB written, errno name or None)."""
    out, error = user.run(kernel, FILL.format(path=path, limit=limit), timeout=300)
    assert error is None, error
    mib, code = out.split()
    return int(mib), None if code == "None" else code


def audit(docker_client, settings):
    hub = docker_client.containers.get(settings.names.hub_container)
    result = hub.exec_run(["sh", "-c", "cat /srv/jupyterhub/audit/access.jsonl 2>/dev/null"])
    return [json.loads(line) for line in result.output.decode().splitlines() if line.strip()]


def docker_disk_free(docker_client, settings):
    """Free bytes of Docker's disk as the hub sees it (the hub data volume)."""
    hub = docker_client.containers.get(settings.names.hub_container)
    out = hub.exec_run(["python3", "-c", "import shutil; print(shutil.disk_usage('/srv/jupyterhub').free)"]).output
    return int(out.decode().strip())


def attached_home_disks(docker_client, settings):
    """Loop devices attached to this instance's home images, seen from a container like the hub's helper."""
    out = docker_client.containers.run(
        settings.names.image("hub"),
        ["sh", "-c", 'for f in /home-disks/*.ext4; do [ -e "$f" ] && losetup -j "$f"; done; true'],
        entrypoint=[],
        network_mode="none",
        cap_drop=["ALL"],
        cap_add=["SYS_ADMIN"],
        device_cgroup_rules=["c 10:237 rwm", "b 7:* rwm"],
        volumes={settings.names.home_disks_volume: {"bind": "/home-disks", "mode": "ro"}, "/dev": {"bind": "/dev"}},
        remove=True,
    )
    return out.decode().split()


@pytest.fixture(scope="module")
def restart(hub, docker_client):
    """restart(**settings): the test hub again, with these settings on top of the dev-mode ones."""

    def stop_all():
        for container in user_servers(docker_client):
            container.stop(timeout=10)

    def restart_with(**env):
        stop_all()
        run_hubstack("up", env=env, timeout=600)
        return hub

    yield restart_with
    stop_all()
    forget_home_disks(docker_client)
    run_hubstack("up", timeout=600)  # back to the defaults the other modules use


def forget_home_disks(docker_client):
    """The homes made under the quota go (this module's own test data): no loop device, no volume left."""
    names = load(environ=INSTANCE_ENV).names
    for container in docker_client.containers.list(
        all=True, filters={"label": [f"hubstack.instance={NAME}", "hubstack.role=user-server"]}
    ):
        container.remove(force=True)
    if names.home_disks_volume not in [v.name for v in docker_client.volumes.list()]:
        return
    docker_client.containers.run(
        names.image("hub"),
        [
            "sh",
            "-c",
            'for f in /home-disks/*.ext4; do losetup -j "$f" | cut -d: -f1 | xargs -r -n1 losetup -d; done; true',
        ],
        entrypoint=[],
        network_mode="none",
        cap_drop=["ALL"],
        cap_add=["SYS_ADMIN"],
        device_cgroup_rules=["c 10:237 rwm", "b 7:* rwm"],
        volumes={names.home_disks_volume: {"bind": "/home-disks", "mode": "ro"}, "/dev": {"bind": "/dev"}},
        remove=True,
    )
    for volume in docker_client.volumes.list(filters={"label": f"hubstack.instance={NAME}"}):
        if volume.attrs["Labels"].get("hubstack.role") in ("home-disk", "home-disks"):
            volume.remove(force=True)


# -- outside the home -----------------------------------------------------------------------------
def test_nothing_outside_the_home_grows_without_bound(restart, docker_client):
    hub = restart(HUBSTACK_TMP_SIZE="64M")
    user = BrowserUser.with_server(hub, "scratch")
    (container,) = user_servers(docker_client, "scratch")
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    kernel = user.start_kernel()["id"]
    mib, code = fill(user, kernel, "/tmp/fill")
    assert code == "ENOSPC" and mib <= TMP_SIZE // 2**20, (mib, code)
    assert fill(user, kernel, "/var/tmp/fill") == (0, "EROFS")  # the rest of the root: read-only
    mib, code = fill(user, kernel, "/dev/shm/fill")  # Docker's 64 MB shared memory
    assert code == "ENOSPC" and mib <= 64, (mib, code)
    out, error = user.run(kernel, "import os\nfor p in ('/tmp/fill', '/dev/shm/fill'): os.remove(p)\nprint('ok')")
    assert (out, error) == ("ok\n", None)
    # Still a working server: a second kernel, a terminal's shell, the home.
    assert user.start_kernel()["id"]
    assert "bash ok" in terminal_says(user, "echo bash $(echo ok) > /tmp/t; cat /tmp/t", expect="bash ok")
    assert user.server_api(
        "PUT", "/contents/kept.txt", json={"type": "file", "format": "text", "content": "home is writable"}
    ).status_code in (200, 201)
    hub_logs = docker_client.api.inspect_container(f"{NAME}-hub")["HostConfig"]["LogConfig"]
    assert hub_logs == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}


def terminal_says(user, command, expect, timeout=30):
    """Run a command in a new JupyterLab terminal (a bash over a websocket); what it printed until expect."""
    made = user.server_api("POST", "/terminals")
    assert made.status_code == 200, made.text
    ws_url = user.server_url.replace("http", "ws", 1) + f"terminals/websocket/{made.json()['name']}"
    cookie = "; ".join(f"{c.name}={c.value}" for c in user.session.cookies)
    ws = websocket.create_connection(ws_url, cookie=cookie, timeout=timeout)
    seen = ""
    try:
        ws.send(json.dumps(["stdin", command + "\r"]))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and expect not in seen:
            message = json.loads(ws.recv())
            if message[0] == "stdout":
                seen += message[1]
    finally:
        ws.close()
    return seen


# -- the free-space threshold ---------------------------------------------------------------------
def test_new_servers_wait_while_docker_disk_is_short(restart, docker_client, settings):
    hub = restart(HUBSTACK_MIN_FREE_DISK="90%")  # far above what this disk has free
    user = BrowserUser(hub, "latecomer")
    user.login()
    page = user.session.get(user.url("/hub/spawn"), timeout=60)
    assert page.status_code == 507, page.status_code
    assert "The hub is short of disk space" in page.text
    assert "Your files are safe" in page.text
    assert not user_servers(docker_client, "latecomer")
    refused = [a for a in audit(docker_client, settings) if a["event"] == "spawn-disk" and a["user"] == "latecomer"]
    assert refused and refused[-1]["decision"] == "refused" and "HUBSTACK_MIN_FREE_DISK=90%" in refused[-1]["reason"]
    assert health_ok(hub)
    doctor = run_hubstack("doctor", "--dev", env={"HUBSTACK_MIN_FREE_DISK": "90%"}, check=False)
    (row,) = [line for line in doctor.stdout.splitlines() if line[6:24].strip() == "disk (Docker data)"]
    assert row.startswith("fail") and "LOW" in row and "new servers refused under 90%" in row, row
    assert doctor.returncode == 1


# -- the home quota ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def veteran(restart):
    """A researcher with files in a home from before the quota."""
    hub = restart()
    user = BrowserUser.with_server(hub, "veteran")
    assert user.server_api(
        "PUT", "/contents/thesis.txt", json={"type": "file", "format": "text", "content": "chapter one"}
    ).status_code in (200, 201)
    user.stop_server()
    return user


@pytest.fixture(scope="module")
def quota_hub(restart, veteran):
    return restart(HUBSTACK_HOME_QUOTA=QUOTA)


def test_a_researcher_cannot_write_past_the_home_quota(quota_hub, docker_client, settings):
    hub = quota_hub
    neighbour = BrowserUser.with_server(hub, "neighbour")
    filler = BrowserUser.with_server(hub, "filler")
    free_before = docker_disk_free(docker_client, settings)
    kernel = filler.start_kernel()["id"]
    out, error = filler.run(kernel, "import shutil; print(shutil.disk_usage('/home/jovyan').total)")
    assert error is None and 200 * 2**20 < int(out) <= 256 * 2**20, out  # df shows the quota
    mib, code = fill(filler, kernel, "/home/jovyan/fill")
    assert code in ("ENOSPC", "EDQUOT") and 200 <= mib <= 256, (mib, code)
    # The neighbour keeps writing; Docker's disk did not lose what the filler wrote (reserved at the first start).
    k = neighbour.start_kernel()["id"]
    assert fill(neighbour, k, "/home/jovyan/results.bin", limit=100 * 2**20) == (100, None)
    assert abs(docker_disk_free(docker_client, settings) - free_before) < 64 * 2**20
    # The hub keeps logging people in and auditing: a newcomer's home is made, and that is audited.
    newcomer = BrowserUser.with_server(hub, "newcomer")
    made = [a for a in audit(docker_client, settings) if a["event"] == "home-disk" and a["user"] == "newcomer"]
    assert made and made[-1]["decision"] == "made" and made[-1]["size_bytes"] == 256 * 2**20, made
    assert health_ok(hub)
    # The filler deletes the file and can write again.
    out, error = filler.run(kernel, "import os; os.remove('/home/jovyan/fill'); print('freed')")
    assert (out, error) == ("freed\n", None)
    assert fill(filler, kernel, "/home/jovyan/small", limit=10 * 2**20) == (10, None)
    for user in (neighbour, filler, newcomer):
        user.stop_server()


def test_a_home_from_before_the_quota_moves_in_and_stays(quota_hub, veteran, docker_client, settings):
    veteran.start_server()
    assert veteran.contents("thesis.txt").json()["content"] == "chapter one"
    assert veteran.server_api(
        "PUT", "/contents/chapter2.txt", json={"type": "file", "format": "text", "content": "chapter two"}
    ).status_code in (200, 201)
    (container,) = user_servers(docker_client, "veteran")
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/home/jovyan"]["Name"] == settings.names.home_disk_volume("veteran")
    veteran.stop_server()
    # Stopped: its volume (a loop device's number) and the loop device are gone; the old home stays.
    assert settings.names.home_disk_volume("veteran") not in [v.name for v in docker_client.volumes.list()]
    assert docker_client.volumes.get(f"{NAME}-home-veteran")
    wait_for(lambda: not attached_home_disks(docker_client, settings), 30, "the loop devices to be detached")
    veteran.start_server()  # attached again: everything is there
    assert veteran.contents("chapter2.txt").json()["content"] == "chapter two"
    veteran.stop_server()
