"""Start at boot: `hubstack service install` under a real systemd, driving the real engine.

A container with Debian's systemd as PID 1 (tests/systemd) stands in for the
VM: it shares the host's network, the host's Docker socket is mounted into it,
and the checkout at the same path as on the host (Compose resolves ./share,
./secrets against it, and the host's engine needs host paths). Its
docker.service is a stand-in that is active once the host's engine answers
(see tests/systemd/docker.service). The hub it starts is the host's container
`<NAME>-hub`, published on loopback. The tests run in order: refusals,
install, a crashed hub, a killed hub, stop, uninstall.
"""

import os
import signal
import time

import pytest
import requests
import urllib3

from helpers import INSTANCE_ENV, NAME, PORT, REPO, health_ok, remove_instance, session_images_as, untag, wait_for
from hubstack.build import Builder
from hubstack.common.settings import load
from hubstack.images import Image

# An instance of its own: the service owns it from install to uninstall, beside the session's hub.
SVC = f"{NAME}svc"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
SVC_HTTPS_PORT = PORT + 352  # 8453 for the default 8101
# HTTPS by Caddy's own CA: the service runs the whole stack, hub and terminator.
SVC_ENV = {
    **INSTANCE_ENV,
    "HUBSTACK_NAME": SVC,
    "HUBSTACK_PORT": str(PORT + 30),
    "HUBSTACK_HTTPS": "self-signed",
    "HUBSTACK_HTTPS_PORT": str(SVC_HTTPS_PORT),
    "HUBSTACK_HTTP_PORT": str(PORT + 389),
}


def https_ok():
    """The hub answers through the terminator (the chain itself is checked in test_https)."""
    try:
        return (
            requests.get(f"https://localhost:{SVC_HTTPS_PORT}/hub/health", verify=False, timeout=3).status_code == 200
        )
    except requests.RequestException:
        return False


SYSTEMD_HOST = Image("systemd-host", "tests/systemd")
UNIT = f"hubstack-{SVC}.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
ENV_FILE = REPO / ".hubstack" / f"{SVC}.env"
TIMES = {}


@pytest.fixture(scope="module")
def svc_settings():
    return load(environ=SVC_ENV)


@pytest.fixture(scope="module")
def machine(built_stack, docker_client, settings, svc_settings):
    """The systemd container, booted; removed at the end with whatever it started."""
    Builder(docker_client, settings, REPO, echo=lambda *_: None).run(images=(SYSTEMD_HOST,))
    # "A machine with built images": the session's images under this instance's names.
    tags = session_images_as(docker_client, settings, svc_settings)
    name = f"{SVC}-test-systemd"
    for old in docker_client.containers.list(all=True, filters={"name": f"^{name}$"}):
        old.remove(force=True)
    # Not --privileged: an engine without CAP_SYS_RESOURCE (as here) cannot grant it. systemd
    # needs CAP_SYS_ADMIN for its mounts and its own cgroup v1 hierarchies, writable. The host's
    # network, as on a VM: `serve` waits for the hub on the host's loopback, where it is published.
    container = docker_client.containers.run(
        settings.names.image(SYSTEMD_HOST.role),
        name=name,
        detach=True,
        network_mode="host",
        cap_add=["SYS_ADMIN"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        labels={**settings.names.labels(), "hubstack.role": "test-systemd"},
        tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
        volumes={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},  # cgroup v1 hierarchies for systemd
            "/var/run/docker.sock": {"bind": "/run/docker.sock", "mode": "rw"},
            str(REPO): {"bind": str(REPO), "mode": "rw"},
        },
    )
    try:

        def booted():
            return run(container, "timeout", "60", "systemctl", "is-system-running", "--wait")[1].strip()

        wait_for(lambda: booted() in ("running", "degraded"), 90, f"systemd in {name} to boot")  # the bus comes first
        print(f"systemd in {name}: {booted()}\n{run(container, 'systemctl', '--failed', '--no-pager')[1]}")
        # The operator's `hubstack`: this checkout, run by Debian's Python and packages.
        run(
            container,
            "sh",
            "-c",
            f"printf '#!/bin/sh\\nPYTHONPATH={REPO} exec python3 -m hubstack \"$@\"\\n' "
            "> /usr/local/bin/hubstack && chmod 755 /usr/local/bin/hubstack",
            check=True,
        )
        yield container
    finally:
        container.remove(force=True)
        ENV_FILE.unlink(missing_ok=True)
        remove_instance(docker_client, SVC)
        untag(docker_client, tags)
        print("\nservice timings (s):", {k: round(v, 1) for k, v in TIMES.items()})


def run(container, *cmd, env=None, user="root", check=False):
    code, (out, err) = container.exec_run(list(cmd), environment=env, user=user, workdir=str(REPO), demux=True)
    out, err = (out or b"").decode(), (err or b"").decode()
    if check and code != 0:
        pytest.fail(f"{' '.join(cmd)} exited {code}:\n{out[-3000:]}\n{err[-3000:]}")
    return code, out, err


def unit_state(container, prop):
    return run(container, "systemctl", "show", "--value", "-p", prop, UNIT)[1].strip()


def journal(container):
    return run(container, "journalctl", "--no-pager", "-n", "40", "-u", UNIT)[1]


def instance_volumes(docker_client):
    return sorted(v.name for v in docker_client.volumes.list(filters={"label": [f"hubstack.instance={SVC}"]}))


def hub_or_none(docker_client):
    found = docker_client.containers.list(all=True, filters={"name": f"^{SVC}-hub$"})
    return found[0] if found else None


@pytest.mark.parametrize(
    "insecure",
    [
        {"DEV_MODE": "1", "HUBSTACK_BIND": "0.0.0.0"},  # dev mode open to the network
        {"DEV_MODE": "0", "HUBSTACK_OAUTH_PROVIDER": "", "HUBSTACK_ACCESS_SOURCES": ""},  # production, no log-in
        {"DEV_MODE": "0", "HUBSTACK_ALLOW_INSECURE_DEV": "1"},
    ],
    ids=["dev-on-all-interfaces", "production-without-login", "production-allowing-insecure-dev"],
)
def test_install_refuses_a_configuration_that_would_open_the_hub(machine, insecure):
    code, out, err = run(machine, "hubstack", "service", "install", env={**SVC_ENV, **insecure})
    assert code == 2, out + err
    said = err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("hubstack: "), err
    assert run(machine, "test", "-e", UNIT_PATH)[0] != 0 and not ENV_FILE.exists()


def test_install_needs_root(machine):
    code, out, err = run(machine, "hubstack", "service", "install", env=SVC_ENV, user="nobody")
    assert code == 1 and err.strip() == (
        "hubstack: this needs root (it writes /etc/systemd/system and runs systemctl): run it with sudo"
    ), out + err
    assert run(machine, "test", "-e", UNIT_PATH)[0] != 0


def test_install_enables_the_unit_and_the_hub_answers(machine, svc_settings, docker_client):
    assert hub_or_none(docker_client) is None
    started = time.monotonic()
    code, out, err = run(machine, "hubstack", "service", "install", env=SVC_ENV)
    assert code == 0, out + err + journal(machine)
    wait_for(lambda: health_ok(svc_settings.url), 60, "the hub after `service install`")
    TIMES["install to healthy"] = time.monotonic() - started
    wait_for(https_ok, 60, "HTTPS after `service install`")
    TIMES["install to healthy HTTPS"] = time.monotonic() - started
    assert run(machine, "systemctl", "is-enabled", UNIT)[1].strip() == "enabled"
    assert run(machine, "systemctl", "is-active", UNIT)[1].strip() == "active"
    assert "docker.service" in unit_state(machine, "Requires").split()
    assert "docker.service" in unit_state(machine, "After").split()
    # systemd itself finds nothing wrong with the installed unit (it names every problem it sees)
    code, out, err = run(machine, "systemd-analyze", "verify", UNIT_PATH)
    assert code == 0 and UNIT not in out + err, out + err
    # The unit pins the instance: its environment file names it, and the hub runs in dev mode on our port.
    assert f"HUBSTACK_NAME={SVC}" in ENV_FILE.read_text()
    hub = hub_or_none(docker_client)
    assert hub.status == "running" and hub.labels["hubstack.instance"] == SVC
    # Running it again changes nothing and says so.
    code, out, err = run(machine, "hubstack", "service", "install", env=SVC_ENV)
    assert code == 0 and "is up to date" in out, out + err
    assert hub_or_none(docker_client).id == hub.id and unit_state(machine, "NRestarts") == "0"


def test_a_crashed_hub_is_restarted_by_docker_and_the_service_keeps_running(machine, svc_settings, docker_client):
    hub = hub_or_none(docker_client)
    main_pid = unit_state(machine, "MainPID")
    # The hub's main process dies by itself, as by the OOM killer (not `docker kill`): Docker's
    # restart policy applies. Its PID is the engine's, which runs on this machine.
    os.kill(hub.attrs["State"]["Pid"], signal.SIGKILL)
    started = time.monotonic()
    wait_for(lambda: hub_or_none(docker_client).attrs["RestartCount"] >= 1, 60, "Docker to restart the hub")
    wait_for(lambda: health_ok(svc_settings.url), 90, "the hub after a crash")
    TIMES["crash to healthy (Docker)"] = time.monotonic() - started
    time.sleep(12)  # longer than serve's grace: it must not have given up on a hub that Docker restarts
    assert unit_state(machine, "MainPID") == main_pid and unit_state(machine, "NRestarts") == "0", journal(machine)


def test_a_killed_hub_is_brought_back_by_systemd(machine, svc_settings, docker_client):
    hub = hub_or_none(docker_client)
    hub.kill()  # `docker kill`: Docker 20.10 counts it as a manual stop and does not restart the hub
    started = time.monotonic()
    wait_for(lambda: not health_ok(svc_settings.url), 10, "the killed hub to stop answering")
    wait_for(lambda: health_ok(svc_settings.url), 120, "the hub after `docker kill`")
    TIMES["kill to healthy (systemd)"] = time.monotonic() - started
    wait_for(lambda: unit_state(machine, "ActiveState") == "active", 30, "the unit to be active again")
    # systemd brought it back (serve exited 5, Restart=on-failure), not Docker's restart policy
    assert unit_state(machine, "NRestarts") == "1", journal(machine)
    assert hub_or_none(docker_client).attrs["RestartCount"] == 0  # started anew by Compose (that resets it)
    assert "Docker did not restart it" in journal(machine)


def test_a_killed_terminator_is_brought_back_by_systemd(machine, svc_settings, docker_client):
    docker_client.containers.get(f"{SVC}-tls").kill()
    started = time.monotonic()
    wait_for(lambda: not https_ok(), 10, "the killed terminator to stop answering")
    wait_for(https_ok, 120, "HTTPS after `docker kill` of the terminator")
    TIMES["terminator kill to HTTPS (systemd)"] = time.monotonic() - started
    wait_for(lambda: unit_state(machine, "ActiveState") == "active", 30, "the unit to be active again")
    assert unit_state(machine, "NRestarts") == "2", journal(machine)
    assert f"the HTTPS terminator container {SVC}-tls is" in journal(machine)


def test_stop_takes_the_stack_down_and_keeps_the_volumes(machine, svc_settings, docker_client):
    volumes = instance_volumes(docker_client)
    assert f"{SVC}-hub-data" in volumes
    started = time.monotonic()
    code, out, err = run(machine, "systemctl", "stop", UNIT)
    TIMES["systemctl stop"] = time.monotonic() - started
    assert code == 0, out + err + journal(machine)
    assert hub_or_none(docker_client) is None
    assert not docker_client.containers.list(all=True, filters={"name": f"^{SVC}-tls$"})
    assert not health_ok(svc_settings.url) and not https_ok()
    assert instance_volumes(docker_client) == volumes
    assert run(machine, "systemctl", "is-active", UNIT)[1].strip() == "inactive"
    assert unit_state(machine, "Result") == "success", journal(machine)
    assert "stopped the hub and 0 user server(s)" in journal(machine)


def test_uninstall_stops_and_removes_the_unit_and_keeps_the_volumes(machine, svc_settings, docker_client):
    run(machine, "systemctl", "start", UNIT, check=True)  # uninstall a running service
    assert health_ok(svc_settings.url)
    volumes = instance_volumes(docker_client)
    code, out, err = run(machine, "hubstack", "service", "uninstall", env=SVC_ENV)
    assert code == 0 and f"removed {UNIT_PATH}" in out, out + err
    assert hub_or_none(docker_client) is None and instance_volumes(docker_client) == volumes
    assert run(machine, "test", "-e", UNIT_PATH)[0] != 0 and not ENV_FILE.exists()
    code, out, err = run(machine, "systemctl", "status", UNIT)
    assert code == 4 and "could not be found" in out + err, out + err
    code, out, err = run(machine, "hubstack", "service", "uninstall", env=SVC_ENV)
    assert code == 0 and "nothing to remove" in out, out + err
