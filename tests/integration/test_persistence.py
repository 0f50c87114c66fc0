"""A researcher's home survives everything an operator does to the stack."""

from helpers import REPO, run_hubstack
from hubclient import BrowserUser
from hubstack.common.contract import Role, short_id
from hubstack.images import IMAGES
from hubstack.stack import Stack

MARKER = "results/keep-me.txt"


def write_marker_and_edit_demo(user):
    kernel = user.start_kernel()
    _, error = user.run(
        kernel["id"],
        (
            "import os, json\n"
            "os.makedirs('/home/jovyan/results', exist_ok=True)\n"
            f"open('/home/jovyan/{MARKER}', 'w').write('genome results')\n"
            "nb = json.load(open('/home/jovyan/demo.ipynb'))\n"
            "nb['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source': ['my own notes']})\n"
            "json.dump(nb, open('/home/jovyan/demo.ipynb', 'w'))"
        ),
    )
    assert error is None


def assert_home_intact(user):
    marker = user.contents(MARKER)
    assert marker.status_code == 200, f"{MARKER} is gone: {marker.status_code}"
    assert marker.json()["content"] == "genome results"
    demo = user.contents("demo.ipynb").json()["content"]
    assert demo["cells"][-1]["source"] == "my own notes", "demo.ipynb was overwritten"


def environment_version(user):
    out, error = user.run(user.start_kernel()["id"], "print(open('/opt/conda/.hubstack-env-version').read())")
    assert error is None
    return out.strip()


def test_home_survives_restart_reset_down_up_and_rebuild(hub, docker_client, settings):
    user = BrowserUser.with_server(hub, "heidi")
    write_marker_and_edit_demo(user)

    # 1. stop and start the server
    user.stop_server()
    user.start_server()
    assert_home_intact(user)

    # 2. `hubstack reset`: a new hub image, the running server survives
    kernel = user.start_kernel()
    run_hubstack("reset", env={"DEV_MODE": "0"})  # keeps the mode the hub runs in
    assert kernel["id"] in [k["id"] for k in user.kernels()]
    assert_home_intact(user)

    # 3. `hubstack down`, then `hubstack up`
    run_hubstack("down")
    run_hubstack("up", "--dev")
    user = BrowserUser.with_server(hub, "heidi")
    assert_home_intact(user)

    # 4. the shared environment rebuilt from scratch (a new image, copied into a new volume; what
    #    `hubstack build --no-cache` does to every image), then a new server, which gets it
    old_version = environment_version(user)
    environment = [i for i in IMAGES if i.role == Role.ENVIRONMENT]
    Stack(REPO, settings, client=docker_client, echo=lambda *_: None).build(images=environment, nocache=True)
    user.stop_server()
    run_hubstack("up", "--dev")
    user = BrowserUser.with_server(hub, "heidi")
    assert_home_intact(user)
    current = short_id(docker_client.images.get(f"{settings.names.image('environment')}:current").id)
    assert environment_version(user) == current != old_version
