"""`hubstack upgrade` from a previous state of this checkout to this one, with a researcher at work.

The previous state is this checkout with an older lock: OAuthenticator 17.3.0 in
the hub core (this checkout has 17.4.0). The test hub is brought to it with that
checkout's own `hubstack build` and `hubstack up`, a researcher starts a server
and a kernel and makes a token, then this checkout's `hubstack upgrade` takes
the hub to the current images, and the researcher's server, kernel and token
come through it.
"""

import os
import re
import subprocess
import sys

import pytest
import requests

from benchmarks.build import scratch_copy
from helpers import INSTANCE_ENV, REPO, run_hubstack, user_servers
from hubclient import BrowserUser

OLD, NEW = "17.3.0", "17.4.0"
LOCK = "hub-core/requirements.lock"


def hubstack_in(project, *args, env=None, timeout=1800):
    """The CLI of another checkout, for the test instance, with this checkout's secrets and access folders."""
    full = {
        **INSTANCE_ENV,
        "HUBSTACK_SECRETS_DIR": str(REPO / "secrets"),
        "HUBSTACK_ACCESS_DIR": str(REPO / "access"),
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, "-m", "hubstack", "-C", str(project), *args],
        env={**os.environ, **full},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"hubstack {' '.join(args)} in {project}:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    )
    return result.stdout


def oauthenticator_in_hub(docker_client, settings):
    hub = docker_client.containers.get(settings.names.hub_container)
    return (
        hub.exec_run(["python3", "-c", "import oauthenticator; print(oauthenticator.__version__)"])
        .output.decode()
        .strip()
    )


@pytest.fixture(scope="module")
def previous(tmp_path_factory, hub, docker_client, settings):
    """The test hub running the previous state's images; afterwards it runs this checkout's again."""
    project = scratch_copy(tmp_path_factory.mktemp("previous"))
    lock = project / LOCK
    text = lock.read_text()
    assert f"oauthenticator=={NEW}\n" in text, "the test's versions no longer match the lock: update OLD and NEW"
    lock.write_text(text.replace(f"oauthenticator=={NEW}\n", f"oauthenticator=={OLD}\n"))
    hubstack_in(project, "build")
    hubstack_in(project, "up", timeout=600)
    assert oauthenticator_in_hub(docker_client, settings) == OLD
    yield project
    run_hubstack("up", timeout=900)  # this checkout's images, whatever the test did (a no-op after the upgrade)


def test_upgrade_keeps_the_running_server_its_kernel_and_tokens(previous, hub, docker_client, settings, repository):
    env, _ = repository
    researcher = BrowserUser.with_server(hub, "upgrader")
    (server,) = user_servers(docker_client, "upgrader")
    started_at = server.attrs["State"]["StartedAt"]
    kernel = researcher.start_kernel()["id"]
    out, error = researcher.run(kernel, "answer = 41; print('set')")
    assert error is None and out.strip() == "set", (out, error)
    made = researcher.api("POST", "/users/upgrader/tokens", json={"note": "before the upgrade", "expires_in": 3600})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    hub_before = docker_client.containers.get(settings.names.hub_container).id
    running = len(user_servers(docker_client))  # theirs, and any another module left running

    said = run_hubstack("upgrade", env=env, timeout=1800).stdout
    print(said[-3000:])

    # It backed up first, said what changed, and migrated (or found nothing to migrate).
    assert re.search(r"backup \S+ of \S+ done", said), said
    assert f"oauthenticator {OLD} -> {NEW}" in said, said
    assert re.search(r"hub database schema: [0-9a-f]{8,}", said) and f" {running} running server(s) kept" in said, said
    assert re.search(r"notebook: unchanged", said), said
    # The hub runs the new image, in a new container, and answers.
    assert oauthenticator_in_hub(docker_client, settings) == NEW
    assert docker_client.containers.get(settings.names.hub_container).id != hub_before
    # The server was never restarted, its kernel still holds what it was given, the token still opens the API.
    server.reload()
    assert server.status == "running" and server.attrs["State"]["StartedAt"] == started_at
    out, error = researcher.run(kernel, "print(answer + 1)")
    assert error is None and out.strip() == "42", (out, error)
    me = requests.get(f"{hub}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "upgrader", me.text
    # The backup made first is in the repository.
    listing = run_hubstack("backup", "list", env=env).stdout
    assert re.search(r"backup (\S+) of", said)[1] in listing, listing
    researcher.stop_server()
    # A second upgrade with nothing changed leaves the hub alone.
    again = run_hubstack("upgrade", "--no-backup", timeout=900).stdout
    assert "the hub image is unchanged: the hub was not restarted" in again, again


def test_upgrade_without_a_backup_repository_stops_before_anything_changes(hub, docker_client, settings):
    hub_id = docker_client.containers.get(settings.names.hub_container).id
    result = run_hubstack("upgrade", env={"HUBSTACK_BACKUP_REPOSITORY": ""}, check=False, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "HUBSTACK_BACKUP_REPOSITORY is not set" in result.stderr and "--no-backup" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert docker_client.containers.get(settings.names.hub_container).id == hub_id
