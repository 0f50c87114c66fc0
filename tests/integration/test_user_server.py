"""A researcher logs in through the form, gets a server, runs code."""

import json

import pytest

from helpers import REPO, health_ok, run_hubstack, wait_for
from hubclient import BrowserUser
from hubstack.common.contract import short_id
from hubstack.images import IMAGES

USERS = ["alice", "jane.doe+x@example.org"]


@pytest.mark.parametrize("name", USERS)
def test_login_spawn_and_run_in_the_shared_environment(hub, docker_client, settings, name):
    user = BrowserUser.with_server(hub, name)
    kernel = user.start_kernel()  # no name: the server's default kernel
    assert kernel["name"] == "python3"
    out, error = user.run(
        kernel["id"],
        (
            "import os, sys, numpy, pandas, matplotlib, scipy, sklearn, Bio, pysam\n"
            "print(os.getuid(), sys.executable, os.stat('/home/jovyan').st_uid)\n"
            "print(sorted(os.listdir('/home/jovyan')))"
        ),
    )
    assert error is None
    uid, executable, home_owner = out.splitlines()[0].split()
    assert (uid, executable, home_owner) == ("1000", "/opt/conda/bin/python", "1000")
    assert "demo.ipynb" in out and "variants.tsv" in out

    escaped = user.me()["name"]
    assert escaped == name  # JupyterHub keeps the e-mail as the user name
    container = docker_client.containers.get(f"{settings.names.user_prefix}-{docker_escape(name)}")
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/home/jovyan"]["Name"] == f"{settings.name}-home-{docker_escape(name)}"
    assert mounts["/opt/conda"]["RW"] is False
    assert container.labels["hubstack.instance"] == settings.name


def current_env_volume(client, settings):
    image = client.images.get(f"{settings.names.image('environment')}:current")
    return settings.names.env_volume(short_id(image.id))


def docker_escape(name):
    """DockerSpawner's default escaping, written out independently for the test."""
    return "".join(c if c.isascii() and (c.islower() or c.isdigit()) else f"-{ord(c):02x}" for c in name)


def test_escaping_of_an_email_matches_dockerspawner():
    assert docker_escape("jane.doe+x@example.org") == "jane-2edoe-2bx-40example-2eorg"


def test_shared_environment_cannot_be_written(hub, docker_client, settings):
    user = BrowserUser.with_server(hub, "carol")
    kernel = user.start_kernel()
    out, error = user.run(
        kernel["id"],
        (
            "import errno\n"
            "try:\n"
            "    open('/opt/conda/evil.py', 'w').write('x')\n"
            "    print('WROTE')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n"
            "print([l.split()[3].split(',')[0] for l in open('/proc/mounts') if l.split()[1] == '/opt/conda'])"
        ),
    )
    assert error is None
    assert out.split("\n")[:2] == ["EROFS", "['ro']"], out
    # Not just permission bits: even root in the user's container cannot write.
    container = docker_client.containers.get(f"{settings.names.user_prefix}-carol")
    numpy_init = "/opt/conda/lib/python3.11/site-packages/numpy/__init__.py"
    code, output = container.exec_run(["sh", "-c", f"echo x >> {numpy_init}"], user="0")
    assert code != 0 and b"Read-only file system" in output, output


def test_users_do_not_see_each_others_files(hub, docker_client, settings):
    dave, erin = (BrowserUser.with_server(hub, name) for name in ("dave", "erin"))
    k = dave.start_kernel()
    _, error = dave.run(k["id"], "open('/home/jovyan/dave-secret.txt', 'w').write('only dave')")
    assert error is None
    k = erin.start_kernel()
    out, error = erin.run(
        k["id"],
        (
            "import os\n"
            "print(os.path.exists('/home/jovyan/dave-secret.txt'))\n"
            "print(sorted(l.split()[1] for l in open('/proc/mounts') if l.split()[1].startswith(('/home', '/opt'))))"
        ),
    )
    assert error is None
    assert out.splitlines() == ["False", "['/home/jovyan', '/opt/conda']"], out
    erin_mounts = docker_client.containers.get(f"{settings.names.user_prefix}-erin").attrs["Mounts"]
    assert {m.get("Name") for m in erin_mounts} == {
        f"{settings.name}-home-erin",
        current_env_volume(docker_client, settings),
    }
    # Nor through the hub: erin's cookies do not open dave's server.
    response = erin.session.get(dave.server_url + "api/contents/dave-secret.txt", allow_redirects=True, timeout=30)
    assert "only dave" not in response.text
    assert response.status_code in (403, 404) or "/hub/" in response.url


def test_demo_notebook_runs_top_to_bottom(hub):
    user = BrowserUser.with_server(hub, "frank")
    kernel = user.start_kernel()
    out, error = user.run(
        kernel["id"],
        (
            "import subprocess\n"
            "r = subprocess.run(['jupyter', 'nbconvert', '--to', 'notebook', '--execute', 'demo.ipynb',"
            " '--output', '/tmp/demo-run.ipynb'], capture_output=True, text=True, cwd='/home/jovyan')\n"
            "print(r.returncode)\n"
            "import json\n"
            "cells = [c for c in json.load(open('/tmp/demo-run.ipynb'))['cells'] if c['cell_type'] == 'code']\n"
            "print(len(cells), sum(1 for c in cells if c['execution_count']),"
            " sum(1 for c in cells for o in c['outputs'] if o['output_type'] == 'error'),"
            " sum(1 for c in cells for o in c['outputs'] if 'image/png' in o.get('data', {})))\n"
            "print(r.stderr[-2000:])"
        ),
        timeout=300,
    )
    assert error is None, error
    returncode, counts = out.splitlines()[:2]
    code_cells, executed, errors, figures = map(int, counts.split())
    assert returncode == "0", out
    assert code_cells > 3 and executed == code_cells and errors == 0, out
    assert figures >= 2, "the demo draws its plots"


def test_running_server_and_kernel_survive_a_hub_restart(hub, docker_client, settings):
    user = BrowserUser.with_server(hub, "grace")
    kernel = user.start_kernel()
    _, error = user.run(kernel["id"], "x = 41")
    assert error is None
    container_before = docker_client.containers.get(f"{settings.names.user_prefix}-grace").id

    docker_client.containers.get(settings.names.hub_container).restart(timeout=60)
    wait_for(lambda: health_ok(hub), timeout=120, what="the hub after restart")

    assert docker_client.containers.get(f"{settings.names.user_prefix}-grace").id == container_before
    assert kernel["id"] in [k["id"] for k in user.kernels()]
    out, error = user.run(kernel["id"], "print(x + 1)")
    assert (out.strip(), error) == ("42", None)


def test_status_reports_servers_volumes_and_images(hub, settings):
    BrowserUser.with_server(hub, "judy")
    report = json.loads(run_hubstack("status", "--json").stdout)
    assert report["hub"] == "healthy"
    judy = {"name": f"{settings.names.user_prefix}-judy", "user": "judy", "status": "running", "profile": "default"}
    assert judy in report["servers"]  # the one profile there is without access/profiles.toml
    assert {"name": f"{settings.name}-home-judy", "role": "home"} in report["volumes"]
    assert {i["name"] for i in report["images"]} == {settings.names.image(i.role) for i in IMAGES}
    assert all(i["age"] != "missing" for i in report["images"])


def test_shell_is_root_in_the_hub_with_share_mounted(hub, settings):
    probe = "/srv/hubstack/share/templates/.shell-probe"
    result = run_hubstack(
        "shell", input=f"id -u; mkdir -p {probe.rsplit('/', 1)[0]} && echo seen > {probe} && cat {probe}\n"
    )
    assert result.stdout.split() == ["0", "seen"], result.stdout
    shared = REPO / "share" / "templates" / ".shell-probe"
    assert shared.read_text().strip() == "seen"
    shared.unlink()
