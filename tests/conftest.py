"""The real stack for the integration and browser tests: real engine, real images, real hub.

The session builds every image with `hubstack build` (cold on a new machine),
then pytest-docker starts the hub with the host's Compose. With no usable
Docker engine these tests fail; they are never skipped. Helpers the tests
import live in helpers.py.
"""

import os
import re
import shlex
from pathlib import Path

import pytest

from helpers import INSTANCE_ENV, INSTANCES, NAME, REPO, health_ok, remove_instance, run_hubstack
from hubstack import compose, engine
from hubstack.common.contract import BACKUP_PASSWORD, EGRESS_SERVICE, HUB_SERVICE
from hubstack.common.settings import load
from hubstack.errors import EngineError


@pytest.fixture(scope="session", autouse=True)
def instance_environment():
    """The test instance's settings in the environment for the session (pytest-docker's Compose reads them)."""
    saved = {key: os.environ.get(key) for key in INSTANCE_ENV}
    os.environ.update(INSTANCE_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_client():
    try:
        return engine.connect()
    except EngineError as err:
        pytest.fail(f"integration tests need a Docker engine: {err}")


@pytest.fixture(scope="session")
def settings():
    return load(environ=INSTANCE_ENV)


@pytest.fixture(scope="session")
def names(settings):
    return settings.names


@pytest.fixture(scope="session")
def clean_slate(docker_client):
    """Start without leftovers of an earlier run; leave none behind."""
    for name in INSTANCES:
        remove_instance(docker_client, name)
    yield
    for name in INSTANCES:
        remove_instance(docker_client, name)


@pytest.fixture(scope="session")
def checkout_secrets():
    """Generated secrets in the checkout's secrets/ while the images build, as an operator has them.

    Files that were there already are used and kept; the ones made here go at the end.
    """
    result = run_hubstack("secrets", "init")
    files = {
        Path(line.split(maxsplit=1)[1]): line.split()[0]
        for line in result.stdout.splitlines()
        if line.startswith(("created ", "kept "))
    }
    made = [path for path, what in files.items() if what == "created"]
    yield {path.name: path.read_text().strip() for path in files}
    for path in made:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def built_stack(clean_slate, checkout_secrets):
    # A cold build downloads every wheel and Debian package: about 3 minutes on a 2-core VM.
    result = run_hubstack("build", timeout=2700)
    print(result.stdout[-2000:])
    return result


# -- pytest-docker: the host's Compose, our compose.yml, our instance -------
@pytest.fixture(scope="session")
def docker_compose_command():
    # with what the CLI derives for Compose alone (profiles, the host's addresses for the egress proxy)
    derived = compose.derived(load(environ=INSTANCE_ENV))
    return " ".join(["env", *(shlex.quote(f"{k}={v}") for k, v in derived.items()), *compose.command()])


@pytest.fixture(scope="session")
def docker_compose_file():
    return str(REPO / "compose.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name():
    return NAME


@pytest.fixture(scope="session")
def docker_setup(built_stack):
    return [f"up -d {HUB_SERVICE} {EGRESS_SERVICE}"]  # not the tls service: the HTTPS tests start it


@pytest.fixture(scope="session")
def docker_cleanup():
    return ["down"]  # never `down -v`: volumes are only removed by clean_slate


@pytest.fixture(scope="session")
def hub(docker_services, settings):
    docker_services.wait_until_responsive(check=lambda: health_ok(settings.url), timeout=180, pause=0.5)
    return settings.url


@pytest.fixture(scope="session")
def repository(tmp_path_factory, hub):
    """A restic repository in a folder of the test session (test_backup, test_upgrade), and its
    password in the checkout's secrets/ (made here, removed afterwards, unless it was there already)."""
    folder = tmp_path_factory.mktemp("restic") / "repo"
    env = {"HUBSTACK_BACKUP_REPOSITORY": str(folder)}
    said = run_hubstack("backup", "init", env=env).stdout
    assert re.search(rf"created\s+repository {re.escape(str(folder))}", said), said
    yield env, folder
    if re.search(rf"created\s+\S*/{BACKUP_PASSWORD}", said):
        (REPO / "secrets" / BACKUP_PASSWORD).unlink(missing_ok=True)
