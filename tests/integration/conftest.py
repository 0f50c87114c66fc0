"""The real stack for integration tests: real engine, real images, real hub.

The session builds every image with `hubstack build` (cold on a new machine),
then pytest-docker starts the hub with the host's Compose. With no usable
Docker engine these tests fail; they are never skipped.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hubstack import compose, engine
from hubstack.settings import load

REPO = Path(__file__).resolve().parents[2]
# HUBCI_NAME/HUBCI_PORT let a developer run a module beside another run.
NAME = os.environ.get("HUBCI_NAME", "hubci")
PORT = int(os.environ.get("HUBCI_PORT", "8101"))
# Compose substitutes these; the CLI reads them. Nothing of the operator's
# default instance ("hubstack") is touched by the tests.
INSTANCE_ENV = {"HUBSTACK_NAME": NAME, "HUBSTACK_PORT": str(PORT), "HUBSTACK_BIND": "127.0.0.1", "DEV_MODE": "1"}
os.environ.update(INSTANCE_ENV)


def run_hubstack(*args, env=None, check=True, timeout=1800, input=None):
    """Run the CLI as an operator would; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "hubstack", "-C", str(REPO), *args],
                            env=full_env, capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        pytest.fail(f"hubstack {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def remove_instance(client, name):
    """Remove everything a test instance made (its own test data only)."""
    flt = {"label": [f"hubstack.instance={name}"]}
    for container in client.containers.list(all=True, filters=flt):
        container.remove(force=True)
    for volume in client.volumes.list(filters=flt):
        volume.remove(force=True)


def health_ok(url):
    try:
        return requests.get(f"{url}/hub/health", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def wait_for(check, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def docker_client():
    try:
        return engine.connect()
    except engine.EngineError as err:
        pytest.fail(f"integration tests need a Docker engine: {err}")


@pytest.fixture(scope="session")
def settings():
    return load(environ=INSTANCE_ENV)


@pytest.fixture(scope="session")
def clean_slate(docker_client):
    """Start without leftovers of an earlier run; leave none behind."""
    for name in (NAME, f"{NAME}2", f"{NAME}svc"):
        remove_instance(docker_client, name)
    yield
    for name in (NAME, f"{NAME}2", f"{NAME}svc"):
        remove_instance(docker_client, name)


@pytest.fixture(scope="session")
def checkout_secrets():
    """Generated secrets in the checkout's secrets/ while the images build, as an operator has them.

    Files that were there already are used and kept; the ones made here go at the end.
    """
    result = run_hubstack("secrets", "init")
    files = {Path(line.split(maxsplit=1)[1]): line.split()[0] for line in result.stdout.splitlines()
             if line.startswith(("created ", "kept "))}
    made = [path for path, what in files.items() if what == "created"]
    yield {path.name: path.read_text().strip() for path in files}
    for path in made:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def built_stack(clean_slate, checkout_secrets):
    result = run_hubstack("build")
    print(result.stdout[-2000:])
    return result


# -- pytest-docker: the host's Compose, our compose.yml, our instance -------
@pytest.fixture(scope="session")
def docker_compose_command():
    return " ".join(compose.command())


@pytest.fixture(scope="session")
def docker_compose_file():
    return str(REPO / "compose.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name():
    return NAME


@pytest.fixture(scope="session")
def docker_setup(built_stack):
    return ["up -d"]


@pytest.fixture(scope="session")
def docker_cleanup():
    return ["down"]  # never `down -v`: volumes are only removed by clean_slate


@pytest.fixture(scope="session")
def hub(docker_services, settings):
    docker_services.wait_until_responsive(check=lambda: health_ok(settings.url), timeout=180, pause=0.5)
    return settings.url
