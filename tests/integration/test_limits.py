"""User servers that cannot hurt the host or each other; idle culling; spawn throttling.

The module restarts the test hub with small limits (so a runaway user hits
them in seconds), then with a short idle timeout, and finally back to the
defaults the other modules use. Researchers use the hub through the login
form and the kernel websocket, as a browser does.
"""

import threading
import time

import pytest

from benchmarks.timeline import docker_time
from helpers import health_ok, run_hubstack, user_servers, wait_for
from hubclient import BrowserUser, HubError, KernelDied

MEM, PIDS = 384 * 1024**2, 128
CONFINED = {
    "HUBSTACK_USER_MEM_LIMIT": "384M",
    "HUBSTACK_USER_CPU_LIMIT": "0.5",
    "HUBSTACK_USER_PIDS_LIMIT": str(PIDS),
    "HUBSTACK_IDLE_TIMEOUT": "0",
    "HUBSTACK_SPAWN_CONCURRENCY": "1",
}
IDLE_TIMEOUT = 20


def stop_all(client):
    for container in user_servers(client):
        container.stop(timeout=10)


@pytest.fixture(scope="module")
def restart(hub, docker_client):
    """restart(**settings): the test hub again, with these settings on top of the dev-mode ones."""

    def restart_with(**env):
        stop_all(docker_client)
        run_hubstack("up", env=env, timeout=600)
        return hub

    yield restart_with
    stop_all(docker_client)
    run_hubstack("up", timeout=600)  # back to the defaults the other modules use


@pytest.fixture(scope="module")
def confined(restart):
    return restart(**CONFINED)


@pytest.fixture(scope="module")
def neighbour(confined):
    """Another researcher, mid-analysis: a variable in a live kernel."""
    user = BrowserUser.with_server(confined, "neighbour")
    kernel = user.start_kernel()["id"]
    out, error = user.run(kernel, "x = 41\nprint('ready')")
    assert (out, error) == ("ready\n", None)
    return user, kernel


def neighbour_answers(hub, neighbour):
    """The hub and the neighbour's kernel both answer; the kernel still holds x (it was never restarted)."""
    user, kernel = neighbour
    out, error = user.run(kernel, "print(x + 1)", timeout=30)
    return health_ok(hub) and (out, error) == ("42\n", None)


def test_user_container_is_confined(confined, docker_client, settings):
    user = BrowserUser.with_server(confined, "confined")
    (container,) = user_servers(docker_client, "confined")
    host = container.attrs["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["PidsLimit"]) == (MEM, MEM, PIDS)
    assert host["CpuQuota"] / host["CpuPeriod"] == 0.5
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and host["Privileged"] is False
    assert host["SecurityOpt"] == ["no-new-privileges"]
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert set(mounts) == {"/home/jovyan", "/opt/conda"} and mounts["/opt/conda"]["RW"] is False
    assert not any("docker.sock" in (m.get("Source") or "") for m in mounts.values())
    # From inside, as the researcher's code sees it.
    kernel = user.start_kernel()["id"]
    out, error = user.run(
        kernel,
        (
            "import os\n"
            "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
            "print(os.getuid(), status['CapEff'].strip(), status['CapBnd'].strip(), status['NoNewPrivs'].strip())\n"
            "print(os.path.exists('/var/run/docker.sock'))"
        ),
    )
    assert error is None
    assert out.split() == ["1000", "0000000000000000", "0000000000000000", "1", "False"]


def test_memory_hog_is_stopped_alone(confined, neighbour, docker_client):
    hog = BrowserUser.with_server(confined, "hog")
    assert hog.server_api(
        "PUT", "/contents/precious.txt", json={"type": "file", "format": "text", "content": "three weeks of results"}
    ).status_code in (200, 201)
    kernel = hog.start_kernel()["id"]
    out, error = hog.run(kernel, "import os; print(os.getpid())")
    hog_pid = out.strip()
    (container,) = user_servers(docker_client, "hog")
    answers = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            answers.append(neighbour_answers(confined, neighbour))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(KernelDied):  # killed at the container's memory limit, mid-cell
            hog.run(kernel, "chunks = []\nwhile True:\n    chunks.append(b'\\x01' * (32 * 2**20))", timeout=120)
    finally:
        done.set()
        watcher.join()
    assert answers and all(answers), f"the neighbour or the hub stopped answering: {answers}"
    # The kernel was killed by the container's memory limit and restarted; the server lives on.
    wait_for(lambda: _kernel_answers(hog, kernel), 60, "the hog's restarted kernel")
    out, error = hog.run(kernel, "import os; print(os.getpid(), 'chunks' in globals())")
    new_pid, still_there = out.split()
    assert new_pid != hog_pid and still_there == "False"
    container.reload()
    assert container.status == "running"
    assert hog.contents("precious.txt").json()["content"] == "three weeks of results"
    assert neighbour_answers(confined, neighbour)


def _kernel_answers(user, kernel):
    try:
        return user.run(kernel, "print(1 + 1)", timeout=10) == ("2\n", None)
    except (HubError, OSError):
        return False


def test_fork_bomb_is_stopped_alone(confined, neighbour, docker_client):
    bomber = BrowserUser.with_server(confined, "bomber")
    assert bomber.server_api(
        "PUT", "/contents/precious.txt", json={"type": "file", "format": "text", "content": "the only copy"}
    ).status_code in (200, 201)
    kernel = bomber.start_kernel()["id"]
    out, error = bomber.run(
        kernel, "import subprocess\nsubprocess.Popen(['bash', '-c', 'f() { f | f & }; f'])\nprint('lit')"
    )
    assert (out, error) == ("lit\n", None)
    (container,) = user_servers(docker_client, "bomber")
    wait_for(
        lambda: container.stats(stream=False)["pids_stats"].get("current", 0) >= PIDS - 5,
        60,
        "the fork bomb to reach the process limit",
    )
    for _ in range(5):  # the bomb keeps trying; everyone else is unaffected
        assert container.stats(stream=False)["pids_stats"]["current"] <= PIDS
        assert neighbour_answers(confined, neighbour)
    # The researcher (or the operator) stops the server; the data survives.
    bomber.stop_server()
    assert not user_servers(docker_client, "bomber")
    bomber.start_server()
    assert bomber.contents("precious.txt").json()["content"] == "the only copy"
    assert neighbour_answers(confined, neighbour)


def test_spawns_beyond_the_limit_wait_in_line(confined, docker_client):
    first, second = BrowserUser(confined, "early"), BrowserUser(confined, "late")
    first.login()
    second.login()
    # The second asks while the first's spawn holds the only place (HUBSTACK_SPAWN_CONCURRENCY=1;
    # the hub holds the first's request up to a second while its spawn goes on).
    answers = []
    asking = threading.Thread(
        target=lambda: answers.append(first.session.get(first.url("/hub/spawn"), timeout=60, allow_redirects=False))
    )
    asking.start()
    time.sleep(0.3)
    waiting = second.session.get(second.url("/hub/spawn"), timeout=60, allow_redirects=False)
    asking.join()
    assert (answers[0].status_code, waiting.status_code) == (302, 302)  # nobody is sent away to retry
    said = second.progress()
    assert "Waiting for a free place: the hub starts 1 server(s) at once, and nobody asked before you." in said, said
    assert "ready" in said[-1].lower(), said
    # In line: the second's container was made only once the first's server was up (its Jupyter
    # Server answers well over a second after its container starts).
    early, late = (docker_client.containers.get(user_servers(docker_client, n)[0].id).attrs for n in ("early", "late"))
    assert docker_time(late["Created"]) - docker_time(early["State"]["StartedAt"]) > 0.5, (early, late)
    for person in (first, second):
        person.stop_server()


def test_idle_servers_are_culled_and_their_volumes_stay(restart, docker_client, settings):
    hub = restart(HUBSTACK_IDLE_TIMEOUT=str(IDLE_TIMEOUT))
    asked = time.monotonic()
    sleepy = BrowserUser.with_server(hub, "sleepy")
    assert sleepy.server_api(
        "PUT", "/contents/notes.txt", json={"type": "file", "format": "text", "content": "left for lunch"}
    ).status_code in (200, 201)
    # Idle from now on: culled after the timeout, on the culler's next round (every 10 s).
    wait_for(lambda: not user_servers(docker_client, "sleepy"), IDLE_TIMEOUT + 60, "the idle server to be culled")
    culled_after = time.monotonic() - asked
    print(f"idle server culled {culled_after:.1f} s after its start was asked for (timeout {IDLE_TIMEOUT} s)")
    assert culled_after >= IDLE_TIMEOUT
    # the container goes first; the hub lists the server until its stop is done (its network released)
    wait_for(lambda: "" not in sleepy.me()["servers"], 60, "the hub to report the culled server stopped")
    assert docker_client.volumes.get(f"{settings.name}-home-sleepy")
    sleepy.start_server()
    assert sleepy.contents("notes.txt").json()["content"] == "left for lunch"
