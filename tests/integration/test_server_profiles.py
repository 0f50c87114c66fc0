"""What a researcher gets: R beside Python, a server profile chosen on the spawn page, a private database,
and the shared folder of their group.

The R tests run on the session's hub as it is (one profile, no form). The
rest start the hub with an access folder holding profiles.toml and
groups.toml, and researchers choose through the hub's own spawn form, as in a
browser; code runs over the kernel websocket.
"""

import html
import json
import re

import pytest
from docker.errors import NotFound
from test_backup import snapshot_files
from test_user_server import docker_escape

from helpers import run_hubstack, user_servers, wait_for
from hubclient import BrowserUser
from hubstack.common.contract import (
    BACKUP_GROUPS,
    DATABASE_DATA,
    DATABASE_PASSWORD_ENV,
    LABEL_PROFILE,
    LABEL_ROLE,
    LABEL_USER,
    Role,
)

MiB = 1024**2
PROFILES = """
[profiles.standard]
description = "The standard server"
default = true

[profiles.small]
description = "For a quick look"
memory = "640M"
cpus = 0.5
pids = 300

[profiles.genomics]
description = "Whole-genome work"
memory = "1536M"
groups = ["genomics"]

[profiles.sql]
description = "With a private MariaDB"
memory = "1G"
database = true
"""
GROUPS = """
[groups.genomics]
members = ["gina", "gus"]
folder = true
"""
DANA = "dana.db@example.org"


# -- R beside Python -------------------------------------------------------------------
def test_the_r_kernel_runs_and_loads_the_genomics_packages(hub):
    rita = BrowserUser.with_server(hub, "rita")
    specs = rita.server_api("GET", "/kernelspecs").json()["kernelspecs"]
    assert specs["ir"]["spec"]["language"] == "R", specs.keys()  # the launcher lists what this lists
    assert specs["python3"]["spec"]["display_name"] == "Python 3 (shared environment)"
    kernel = rita.start_kernel("ir")
    shown = []
    out, error = rita.run(kernel["id"], "1+1", displays=shown)  # IRkernel shows a value as rich output
    assert error is None and (out.strip() or shown[-1]["text/plain"]) == "[1] 2", (out, shown)
    out, error = rita.run(
        kernel["id"],
        "suppressPackageStartupMessages({library(ggplot2); library(data.table); library(dplyr); "
        "library(GenomicRanges)})\n"
        'cat(as.character(packageVersion("ggplot2")), R.version$major, "\\n")',
        timeout=180,
    )
    assert error is None, error
    assert re.fullmatch(r"\d+\.\d+\.\d+ 4", out.strip()), out
    # R lives in the image, read-only for everyone: not even its own library can be written to.
    python = rita.start_kernel()
    out, error = rita.run(
        python["id"],
        "import errno\ntry:\n    open('/usr/lib/R/site-library/mine.R', 'w')\n    print('WROTE')\n"
        "except OSError as err:\n    print(errno.errorcode[err.errno])",
    )
    assert (out.strip(), error) == ("EROFS", None)


def test_demo_r_is_delivered_once_and_runs_top_to_bottom(hub):
    rhea = BrowserUser.with_server(hub, "rhea")
    notebook = rhea.contents("demo-r.ipynb").json()["content"]
    kernel = rhea.start_kernel(notebook["metadata"]["kernelspec"]["name"])
    displays, out = [], ""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            out, error = rhea.run(kernel["id"], cell["source"], timeout=300, displays=displays)
            assert error is None, (cell["source"][:120], error)
    assert sum("image/png" in data for data in displays) >= 2, [sorted(d) for d in displays]  # the plots were drawn
    assert out.startswith("Summary: ") and "donors" in out, out
    # Never overwritten: their edit survives a restart.
    rhea.server_api("PUT", "/contents/demo-r.ipynb", json={"type": "file", "format": "text", "content": "mine"})
    rhea.stop_server()
    rhea.start_server()
    assert rhea.contents("demo-r.ipynb?content=1&format=text&type=file").json()["content"] == "mine"


# -- profiles --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def profiled(hub, tmp_path_factory):
    access = tmp_path_factory.mktemp("profiles") / "access"
    access.mkdir()
    (access / "profiles.toml").write_text(PROFILES)
    (access / "groups.toml").write_text(GROUPS)
    env = {"HUBSTACK_ACCESS_DIR": str(access)}
    run_hubstack("up", env=env, timeout=600)
    yield env
    run_hubstack("up", timeout=600)  # back to the hub without profiles that the other modules use


def researcher(hub, name):
    person = BrowserUser(hub, name)
    person.login()
    return person


def offered(person):
    page = person.session.get(person.url("/hub/spawn"), timeout=60)
    assert page.status_code == 200, page.status_code
    return re.findall(r'data-profile="([^"]+)"', page.text)


def test_the_spawn_form_lists_the_profiles_open_to_each_researcher(profiled, hub, docker_client):
    assert offered(researcher(hub, "pat")) == ["standard", "small", "sql"]
    assert offered(researcher(hub, "gina")) == ["standard", "small", "genomics", "sql"]  # groups.toml
    assert not user_servers(docker_client, "pat")  # showing the form started nothing


def test_the_server_is_made_with_exactly_the_chosen_profile(profiled, hub, docker_client, settings):
    pat = researcher(hub, "pat")
    pat.start_server(form={"profile": "small"})
    (server,) = user_servers(docker_client, "pat")
    host = server.attrs["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["CpuQuota"], host["PidsLimit"]) == (
        640 * MiB,
        640 * MiB,
        50_000,
        300,
    )
    assert server.labels[LABEL_PROFILE] == "small"
    kernel = pat.start_kernel()
    out, error = pat.run(kernel["id"], "import os; print(os.environ['HUBSTACK_PROFILE'], 'DATABASE_URL' in os.environ)")
    assert (out.strip(), error) == ("small False", None)
    status = run_hubstack("status", env=profiled).stdout
    assert re.search(rf"{re.escape(server.name)}\s+pat\s+running\s+profile small", status), status
    pat.stop_server()

    gina = researcher(hub, "gina")
    gina.start_server(form={"profile": "genomics"})
    (server,) = user_servers(docker_client, "gina")
    assert server.attrs["HostConfig"]["Memory"] == 1536 * MiB and server.labels[LABEL_PROFILE] == "genomics"
    gina.stop_server()


@pytest.mark.parametrize(
    "form,said",
    [
        ({"profile": "huge"}, "there is no such profile"),
        ({"profile": "genomics"}, "it is for genomics only"),  # pat is not in the group
        ({"profile": "small", "image": "HUB_IMAGE"}, "only a profile can be chosen, not 'image'"),
        ({"profile": "small", "mem_limit": "64G"}, "not 'mem_limit'"),
    ],
)
def test_a_forged_choice_is_refused_and_nothing_starts(profiled, hub, docker_client, settings, form, said):
    pat = researcher(hub, "pat")
    form = {k: settings.names.image("hub") if v == "HUB_IMAGE" else v for k, v in form.items()}
    response = pat.spawn_form(form)
    assert response.status_code == 403, (response.status_code, response.text[-400:])
    assert said in html.unescape(response.text)
    assert not user_servers(docker_client, "pat")
    # The API takes user_options as they are: the same rule.
    escaped = pat.me()["name"]
    response = pat.api("POST", f"/users/{escaped}/server", json={"user_options": form})
    assert response.status_code == 403, (response.status_code, response.text[-300:])
    assert not user_servers(docker_client, "pat")


# -- the private database ----------------------------------------------------------------
WRITE = """
import os, sqlalchemy as sa
engine = sa.create_engine(os.environ["DATABASE_URL"])
with engine.begin() as db:
    db.execute(sa.text("CREATE TABLE samples (id INT PRIMARY KEY, donor VARCHAR(16))"))
    db.execute(sa.text("INSERT INTO samples VALUES (1, 'DO1001'), (2, 'DO1002')"))
print(engine.url.host, engine.url.port, engine.url.database)
"""
READ = """
import os, sqlalchemy as sa
with sa.create_engine(os.environ["DATABASE_URL"]).connect() as db:
    print([row.donor for row in db.execute(sa.text("SELECT donor FROM samples ORDER BY id"))])
"""
REACH = """
import pymysql
for host in HOSTS:
    try:
        pymysql.connect(host=host, port=3306, user="jovyan", password="guess", connect_timeout=3)
        print(host, "connected")
    except pymysql.err.OperationalError as err:
        print(host, err.args[0])
"""


def sidecar_of(docker_client, server):
    return docker_client.containers.get(f"{server.name}-db")


def start_with_database(hub, docker_client):
    dana = researcher(hub, DANA)
    if not user_servers(docker_client, DANA):
        dana.start_server(form={"profile": "sql"})
    else:
        dana.server_url = dana.url(dana.me()["servers"][""]["url"])
        dana.open_server()
    (server,) = user_servers(docker_client, DANA)
    return dana, server


def test_the_database_sidecar_keeps_its_rows_across_stop_and_start(profiled, hub, docker_client, settings):
    dana, server = start_with_database(hub, docker_client)
    sidecar = sidecar_of(docker_client, server)
    host = sidecar.attrs["HostConfig"]
    assert host["NetworkMode"] == f"container:{server.id}" and host["Memory"] == 256 * MiB
    assert sidecar.labels[LABEL_ROLE] == Role.DATABASE_SIDECAR and sidecar.labels[LABEL_USER] == DANA
    (data,) = [m for m in sidecar.attrs["Mounts"] if m["Destination"] == DATABASE_DATA]
    home = next(m for m in server.attrs["Mounts"] if m["Destination"] == "/home/jovyan")
    # named and escaped like the home, and labelled with the user's exact name
    assert data["Name"] == f"{settings.name}-db-{docker_escape(DANA)}"
    assert home["Name"] == f"{settings.name}-home-{docker_escape(DANA)}"
    volume = docker_client.volumes.get(data["Name"])
    assert volume.attrs["Labels"][LABEL_ROLE] == Role.DATABASE and volume.attrs["Labels"][LABEL_USER] == DANA
    image_env = docker_client.images.get(settings.names.image("database")).attrs["Config"]["Env"]
    assert not any(line.startswith(DATABASE_PASSWORD_ENV) for line in image_env)  # never in the image
    first_password = env_of(sidecar)[DATABASE_PASSWORD_ENV]

    kernel = dana.start_kernel()
    out, error = dana.run(kernel["id"], WRITE)
    assert (out.strip(), error) == ("127.0.0.1 3306 jovyan", None)
    dana.stop_server()
    with pytest.raises(NotFound):  # stopped and removed with the server
        sidecar.reload()

    dana.start_server(form={"profile": "sql"})
    (server,) = user_servers(docker_client, DANA)
    assert env_of(sidecar_of(docker_client, server))[DATABASE_PASSWORD_ENV] != first_password  # new at each start
    kernel = dana.start_kernel()
    out, error = dana.run(kernel["id"], READ)
    assert (out.strip(), error) == ("['DO1001', 'DO1002']", None)


def env_of(container):
    return dict(line.split("=", 1) for line in container.attrs["Config"]["Env"])


def test_no_one_else_reaches_the_database(profiled, hub, docker_client, settings):
    _, server = start_with_database(hub, docker_client)
    address = next(iter(server.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    # Another researcher, by the server's address (and their own 127.0.0.1, where nothing listens):
    pat = researcher(hub, "pat")
    pat.start_server(form={"profile": "standard"})
    kernel = pat.start_kernel()
    out, error = pat.run(kernel["id"], REACH.replace("HOSTS", repr([address, "127.0.0.1"])), timeout=60)
    assert error is None and out.split("\n")[:2] == [f"{address} 2003", "127.0.0.1 2003"], out
    pat.stop_server()
    # Even from inside Dana's own server, MariaDB answers on 127.0.0.1 only, not on the address others see.
    code, output = server.exec_run(
        ["/opt/conda/bin/python", "-c", REACH.replace("HOSTS", repr([address, "127.0.0.1"]))], user="1000"
    )
    lines = output.decode().split("\n")
    assert code == 0 and lines[0] == f"{address} 2003" and lines[1] == "127.0.0.1 1045", output  # 1045: wrong password


# -- group folders -----------------------------------------------------------------------
FOLDER_LOOK = """
import json, os
folder = "/shared/genomics"
seen = {"shared": sorted(os.listdir("/shared")), "mounted": any(l.split()[1] == folder for l in open("/proc/mounts"))}
if os.path.isdir(folder):
    with open(f"{folder}/from-{os.environ['JUPYTERHUB_USER']}.txt", "w") as out:
        out.write(os.environ["JUPYTERHUB_USER"])
    seen["files"] = {name: open(f"{folder}/{name}").read() for name in sorted(os.listdir(folder))}
print(json.dumps(seen))
"""


def look_at_the_folder(person):
    kernel = person.start_kernel()
    out, error = person.run(kernel["id"], FOLDER_LOOK)
    assert error is None, error
    return json.loads(out)


def test_members_share_their_group_folder_and_no_one_else_sees_it(profiled, hub, docker_client, settings):
    gina, gus, pat = (researcher(hub, name) for name in ("gina", "gus", "pat"))
    gina.start_server(form={"profile": "standard"})
    assert look_at_the_folder(gina) == {
        "shared": ["genomics"],
        "mounted": True,
        "files": {"from-gina.txt": "gina"},
    }
    gus.start_server(form={"profile": "standard"})
    seen = look_at_the_folder(gus)  # gus reads what gina wrote, and writes beside it (the same uid)
    assert seen["files"] == {"from-gina.txt": "gina", "from-gus.txt": "gus"}
    assert look_at_the_folder(gina)["files"]["from-gus.txt"] == "gus"
    pat.start_server(form={"profile": "standard"})
    assert look_at_the_folder(pat) == {"shared": [], "mounted": False}  # not a member: not even the name
    (server,) = user_servers(docker_client, "pat")
    assert not [m for m in server.attrs["Mounts"] if m["Destination"].startswith("/shared/")]
    volume = docker_client.volumes.get(settings.names.group_volume("genomics"))
    assert volume.attrs["Labels"][LABEL_ROLE] == Role.GROUP_FOLDER
    for person in (gina, gus, pat):
        person.stop_server()


# -- backups: the database with the home, the group folder with the hub --------------------
def test_the_database_is_backed_up_with_the_home_and_restored(profiled, hub, docker_client, settings, repository):
    backup_env, folder = repository
    env = {**profiled, **backup_env}
    dana, server = start_with_database(hub, docker_client)
    said = run_hubstack("backup", env=env).stdout
    assert re.search(rf"home of {re.escape(DANA)} and database\s", said), said
    # the group folder, as the group's members left it, is in the hub's snapshot
    assert "1 group folder(s)" in said, said
    assert f"{BACKUP_GROUPS}/genomics/from-gina.txt" in snapshot_files(docker_client, settings, folder, "hub")
    kernel = dana.start_kernel()
    out, error = dana.run(
        kernel["id"],
        "import os, sqlalchemy as sa\nwith sa.create_engine(os.environ['DATABASE_URL']).begin() as db:\n    db.execute(sa.text('DELETE FROM samples'))",
    )
    assert error is None, error
    dana.stop_server()
    said = run_hubstack("restore", "--user", DANA, "--overwrite", env=env).stdout
    assert f"database of {DANA}" in said, said
    dana.start_server(form={"profile": "sql"})
    kernel = dana.start_kernel()
    out, error = dana.run(kernel["id"], READ)
    assert (out.strip(), error) == ("['DO1001', 'DO1002']", None)
    dana.stop_server()
    wait_for(lambda: not docker_client.containers.list(filters={"name": f"{server.name}-db"}), 60, "the sidecar to go")
