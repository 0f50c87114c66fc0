"""`hubstack users`: the operator lists users, deletes one keeping their home, purges a home
only after typing the exact name, and finds what JupyterHub's admin API left behind.

Three researchers with servers and files: ann, anna (whose name begins with ann's, so her
volume's name begins with ann's volume's name) and olga@example.org (deleted the way the
admin page deletes, through the hub's API).
"""

import json
import time
from urllib.parse import quote

import pytest
import requests

from helpers import run_hubstack, wait_for
from hubclient import BrowserUser
from hubstack.common.contract import AUDIT_LOG, USER_HOME, Role
from hubstack_hub.names import docker_escape
from hubstack_hub.users import TOKEN_FILE

ANN, ANNA, OLGA = "ann", "anna", "olga@example.org"
MB = 1_000_000


def home(settings, user):
    return settings.names.home_volume_template.format(username=docker_escape(user))


def volumes_of(docker_client, settings, user):
    return sorted(v.name for v in docker_client.volumes.list(filters=settings.names.label_filter(user=user)))


def audit(docker_client, settings):
    hub = docker_client.containers.get(settings.names.hub_container)
    lines = hub.exec_run(["cat", AUDIT_LOG]).output.decode().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def listed(*args):
    return json.loads(run_hubstack("users", *args, "--json").stdout)


def by_name(rows):
    return {row["name"]: row for row in rows}


@pytest.fixture(scope="module")
def researchers(hub, docker_client, settings):
    """ann (3 MB of files), anna (1 MB) and olga (2 MB), each with a running server."""
    people = {}
    for name, size in ((ANN, 3), (ANNA, 1), (OLGA, 2)):
        user = BrowserUser.with_server(hub, name)
        kernel = user.start_kernel()
        _, error = user.run(
            kernel["id"], f"import os; open('{USER_HOME}/data.bin', 'wb').write(os.urandom({size * MB}))"
        )
        assert error is None, error
        people[name] = user
    yield people
    for name in people:  # whatever a failed test left: this module's researchers only
        run_hubstack("users", "delete", name, "--purge", "--yes-delete-data-of", name, check=False)


def test_users_lists_servers_activity_homes_and_approval(researchers, settings):
    rows = by_name(listed())
    for name, size in ((ANN, 3), (ANNA, 1), (OLGA, 2)):
        row = rows[name]
        assert [(s["name"], s["state"]) for s in row["servers"]] == [("", "running")]
        assert row["approval"] == "dev"
        assert row["last_activity"]
        assert [v["name"] for v in row["volumes"]] == [home(settings, name)]
        assert size * MB <= row["home_bytes"] < (size + 5) * MB, row  # and demo.ipynb, dotfiles
    started = time.time()
    table = run_hubstack("users").stdout
    print(f"hubstack users: {time.time() - started:.1f} s")
    ann_line = next(line for line in table.splitlines() if line.split()[0] == ANN)
    assert "running" in ann_line and " MB " in ann_line and ann_line.rstrip().endswith("dev"), table


def test_delete_keeps_the_home_as_an_orphan(researchers, docker_client, settings):
    started = time.time()
    result = run_hubstack("users", "delete", ANN)
    print(f"hubstack users delete {ANN}: {time.time() - started:.1f} s")
    assert f"deleted {ANN} from the hub (servers stopped: default)" in result.stdout
    assert ANN not in by_name(listed())
    assert volumes_of(docker_client, settings, ANN) == [home(settings, ANN)]
    assert not docker_client.containers.list(all=True, filters=settings.names.label_filter(Role.USER_SERVER, user=ANN))
    orphans = by_name(listed("orphans"))
    orphan = orphans[home(settings, ANN)]
    assert orphan["user"] == ANN and orphan["bytes"] >= 3 * MB and orphan["created"], orphan
    assert home(settings, ANNA) not in orphans
    deleted = [r for r in audit(docker_client, settings) if r["event"] == "user-deleted" and r["user"] == ANN]
    assert deleted and deleted[-1]["kept"] == [home(settings, ANN)], deleted


def test_delete_of_someone_unknown_says_so(researchers):
    result = run_hubstack("users", "delete", "nobody-here", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no user 'nobody-here'" in result.stderr


@pytest.mark.parametrize(
    "how",
    [
        ("--purge", "--yes-delete-data-of", ANN),  # a prefix of the name
        ("--purge", "--yes-delete-data-of", "ANNA"),
        ("--purge",),  # the prompt, answered with the neighbour's name below
        ("--yes-delete-data-of", ANNA),  # without --purge
    ],
)
def test_a_wrong_confirmation_deletes_nothing(researchers, docker_client, settings, how):
    before = {user: volumes_of(docker_client, settings, user) for user in (ANN, ANNA)}
    lines_before = len(audit(docker_client, settings))
    result = run_hubstack("users", "delete", ANNA, *how, check=False, input=f"{ANN}\n")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nothing was deleted" in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert {user: volumes_of(docker_client, settings, user) for user in (ANN, ANNA)} == before
    assert before[ANNA] == [home(settings, ANNA)]
    assert [(s["name"], s["state"]) for s in by_name(listed())[ANNA]["servers"]] == [("", "running")]
    assert len(audit(docker_client, settings)) == lines_before


def test_purge_removes_exactly_that_users_home(researchers, docker_client, settings):
    anna = researchers[ANNA]
    result = run_hubstack("users", "delete", ANN, "--purge", input=f"{ANN}\n")
    assert f"{home(settings, ANN)}" in result.stdout and "removed 1 volume(s) of ann" in result.stdout
    assert volumes_of(docker_client, settings, ANN) == []
    # the neighbour whose name (and volume name) begins with ann's: untouched, still working
    assert volumes_of(docker_client, settings, ANNA) == [home(settings, ANNA)]
    out, error = anna.run(anna.start_kernel()["id"], f"import os; print(os.path.getsize('{USER_HOME}/data.bin'))")
    assert (out.strip(), error) == (str(MB), None)
    assert home(settings, ANN) not in by_name(listed("orphans"))
    purged = [r for r in audit(docker_client, settings) if r["event"] == "user-data-purged" and r["user"] == ANN]
    assert purged[-1]["removed"] == [home(settings, ANN)] and purged[-1]["failed"] == []


def test_the_admin_api_deletion_keeps_the_home(researchers, docker_client, settings, hub):
    """DELETE /hub/api/users/NAME, as JupyterHub's admin page sends it, with a token allowed to delete users."""
    hub_container = docker_client.containers.get(settings.names.hub_container)
    token = hub_container.exec_run(["cat", str(TOKEN_FILE)]).output.decode().strip()
    response = requests.delete(
        f"{hub}/hub/api/users/{quote(OLGA, safe='@')}", headers={"Authorization": f"token {token}"}, timeout=120
    )
    assert response.status_code == 204, response.text
    assert OLGA not in by_name(listed())
    assert volumes_of(docker_client, settings, OLGA) == [home(settings, OLGA)]
    orphans = by_name(listed("orphans"))
    assert orphans[home(settings, OLGA)]["user"] == OLGA
    wait_for(
        lambda: any(r["event"] == "user-deleted" and r["user"] == OLGA for r in audit(docker_client, settings)),
        30,
        "the user-deleted line",
    )
    (deleted,) = [r for r in audit(docker_client, settings) if r["event"] == "user-deleted" and r["user"] == OLGA]
    assert deleted["kept"] == [home(settings, OLGA)]
    # an orphan: not in the hub, so only --purge, and then her volume is what goes
    assert run_hubstack("users", "delete", OLGA, check=False).returncode == 1
    result = run_hubstack("users", "delete", OLGA, "--purge", "--yes-delete-data-of", OLGA)
    assert "from the hub" not in result.stdout and "removed 1 volume(s)" in result.stdout
    assert volumes_of(docker_client, settings, OLGA) == []
    assert volumes_of(docker_client, settings, ANNA) == [home(settings, ANNA)]
    purged = [r for r in audit(docker_client, settings) if r["event"] == "user-data-purged" and r["user"] == OLGA]
    assert purged[-1]["removed"] == [home(settings, OLGA)]
