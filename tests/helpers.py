"""The test instances and what the integration tests do with them.

The tests run their own instances (`hubci` on 127.0.0.1:8101; hubci2,
hubcisvc beside it) and never touch an operator's. HUBCI_NAME/HUBCI_PORT
let a developer run a module beside another run.
"""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest
import requests

from hubstack.common.contract import CURRENT, HEALTH_PATH, LABEL_INSTANCE, LABEL_ROLE, LABEL_USER, Role
from hubstack.images import IMAGES

REPO = Path(__file__).resolve().parents[1]
NAME = os.environ.get("HUBCI_NAME", "hubci")
PORT = int(os.environ.get("HUBCI_PORT", "8101"))
# What Compose substitutes and the CLI reads for the test instance: dev-mode log-in, but egress
# closed as in production, so that every test runs against servers on networks of their own.
INSTANCE_ENV = {
    "HUBSTACK_NAME": NAME,
    "HUBSTACK_PORT": str(PORT),
    "HUBSTACK_BIND": "127.0.0.1",
    "DEV_MODE": "1",
    "HUBSTACK_EGRESS": "closed",
}
INSTANCES = (NAME, f"{NAME}2", f"{NAME}svc")


def run_hubstack(*args, env=None, check=True, timeout=1800, input=None):
    """Run the CLI as an operator would, for the test instance unless env says otherwise."""
    full_env = {**os.environ, **INSTANCE_ENV, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "hubstack", "-C", str(REPO), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"hubstack {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def instance_filter(name, **labels):
    return {"label": [f"{LABEL_INSTANCE}={name}"] + [f"{k}={v}" for k, v in labels.items()]}


def remove_instance(client, name):
    """Remove everything a test instance made (its own test data only)."""
    for container in client.containers.list(all=True, filters=instance_filter(name)):
        container.remove(force=True)
    for volume in client.volumes.list(filters=instance_filter(name)):
        volume.remove(force=True)
    for network in client.networks.list(filters={"label": [f"{LABEL_INSTANCE}={name}", "hubstack.role=user-network"]}):
        network.remove()


def user_servers(client, user=None):
    """The test instance's running user servers (of one user, by the name the hub knows them by)."""
    labels = [f"{LABEL_INSTANCE}={NAME}", f"{LABEL_ROLE}={Role.USER_SERVER}"] + (
        [f"{LABEL_USER}={user}"] if user else []
    )
    return client.containers.list(filters={"label": labels})


def session_images_as(client, settings, other):
    """The session's images tagged under another instance's names, as a host that built them has
    them (a build for that instance then skips every image but the hub, whose parent is named by
    instance); the tags made, to remove afterwards with untag()."""
    tags = []
    for role in [i.role for i in IMAGES] + [f"{Role.ENVIRONMENT}:{CURRENT}"]:
        repository, _, tag = role.partition(":")
        client.images.get(settings.names.image(role)).tag(other.names.image(repository), tag or "latest")
        tags.append(other.names.image(role))
    return tags


def untag(client, tags):
    for tag in tags:
        try:
            client.images.remove(tag, noprune=True)
        except docker.errors.NotFound:
            pass


def health_ok(url):
    try:
        return requests.get(f"{url}{HEALTH_PATH}", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def wait_for(check, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def operator_files(files):
    """Write files ({path: bytes}) as an operator would (in share/, say); put back what was there after."""
    kept = {path: path.read_bytes() for path in files if path.exists()}
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    try:
        yield files
    finally:
        for path in files:
            if path in kept:
                path.write_bytes(kept[path])
            else:
                path.unlink()
