"""What `hubstack build` makes of the Dockerfiles (hubstack.assemble): one layer per image over its
parent, the configuration each Dockerfile writes, no wheel left behind, and the shared environment
filled straight into its volume."""

import json

import pytest

from hubstack.common.contract import (
    ENV_MOUNT,
    ENV_VERSION_FILE,
    HUB_CONFIG,
    HUB_DATA,
    LABEL_INSTANCE,
    LIB,
    PYTHON_REPOSITORY,
    USER_HOME,
    USER_UID,
    short_id,
)
from hubstack.images import IMAGES, PYTHON

EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"  # an empty tar


def layers(image):
    return image.attrs["RootFS"]["Layers"]


def parent_layers(docker_client, names, image, built):
    if image.parent == PYTHON.role:
        pythons = [
            p for p in docker_client.images.list(PYTHON_REPOSITORY) if layers(built)[: len(layers(p))] == layers(p)
        ]
        assert pythons, f"{image.role} does not stand on a {PYTHON_REPOSITORY} image"
        return layers(pythons[0])
    return layers(docker_client.images.get(names.image(image.parent)))


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.role)
def test_one_layer_over_its_parent(built_stack, docker_client, names, image):
    built = docker_client.images.get(names.image(image.role))
    below = parent_layers(docker_client, names, image, built)
    assert layers(built)[: len(below)] == below
    added = layers(built)[len(below) :]
    # Built here: one layer. Built for another instance of this host from the same inputs: that
    # image's layer, and the empty one of the commit that gave it this instance's labels.
    assert len(added) == 1 or (len(added) == 2 and added[1] == EMPTY_LAYER), added
    assert built.labels[LABEL_INSTANCE] == names.instance


def config(docker_client, names, role):
    return docker_client.images.get(names.image(role)).attrs["Config"]


def test_the_configuration_each_dockerfile_writes(built_stack, docker_client, names):
    hub = config(docker_client, names, "hub")
    assert hub["Entrypoint"] == ["tini", "-g", "--"]
    assert hub["Cmd"] == ["sh", "-c", 'exec jupyterhub -f "$HUB_CONFIG"']
    assert hub["WorkingDir"] == HUB_DATA
    assert {f"PYTHONPATH={LIB}", f"HUB_CONFIG={HUB_CONFIG}"} <= set(hub["Env"])
    assert any(e.startswith("PATH=/opt/hub/bin:") for e in hub["Env"])  # from hub-core, with $PATH expanded

    # No ENTRYPOINT or CMD in hub-core's Dockerfile: the base's, not the build container's `sleep`.
    core = config(docker_client, names, "hub-core")
    assert not core["Entrypoint"] and core["Cmd"] == ["bash"] and not core["User"], core

    notebook = config(docker_client, names, "notebook")
    assert notebook["User"] == str(USER_UID) and notebook["WorkingDir"] == USER_HOME
    assert notebook["Entrypoint"] == ["tini", "-g", "--"] and notebook["Cmd"] == ["hubstack-start"]
    assert f"JUPYTER_PATH={ENV_MOUNT}/share/jupyter" in notebook["Env"]

    # An ENTRYPOINT resets the CMD the base image had ("bash"), as in a Dockerfile.
    tls = config(docker_client, names, "tls")
    assert tls["Entrypoint"] == ["tini", "-g", "--", "/usr/local/bin/hubstack-tls"] and not tls["Cmd"]
    assert {"80/tcp", "443/tcp"} <= set(tls["ExposedPorts"])
    assert "53/udp" in config(docker_client, names, "egress")["ExposedPorts"]
    assert config(docker_client, names, "database")["User"] == "mysql"


def test_no_wheel_stays_in_an_image(built_stack, docker_client, names):
    for role in ("hub-core", "notebook", "environment"):
        out = docker_client.containers.run(
            names.image(role), ["sh", "-c", "ls /tmp; command -v uv"], entrypoint=[], user="0", remove=True
        )
        listed = out.decode().split()
        assert not [f for f in listed if f.endswith(".whl") or f == "wheels"], (role, listed)
        assert "/usr/local/bin/uv" in listed, (role, listed)


def test_the_environment_is_filled_in_its_volume(built_stack, docker_client, names):
    current = docker_client.images.get(names.current_environment)
    volume = names.env_volume(short_id(current.id))
    script = (
        f"cat {ENV_MOUNT}/{ENV_VERSION_FILE}; {ENV_MOUNT}/bin/python -c 'import numpy, pandas; print(numpy.__file__)'; "
        f"ls {ENV_MOUNT}/lib/python3.11/site-packages/pandas/__pycache__ | grep -c pyc; "
        f"cat {ENV_MOUNT}/share/jupyter/kernels/python3/kernel.json; {ENV_MOUNT}/bin/pip --version"
    )
    out = docker_client.containers.run(
        names.image("notebook"),
        ["sh", "-c", script],
        entrypoint=[],
        volumes={volume: {"bind": ENV_MOUNT, "mode": "ro"}},
        network_mode="none",
        remove=True,
    ).decode()
    version, module, compiled, rest = out.split("\n", 3)
    assert version == short_id(current.id)
    assert module.startswith(f"{ENV_MOUNT}/lib/python3.11/site-packages/numpy/")
    assert int(compiled) > 0  # byte code made at the fill: nobody can write it in a read-only volume
    kernel = json.loads(rest[: rest.rindex("}") + 1])
    assert kernel["argv"][0] == f"{ENV_MOUNT}/bin/python" and kernel["display_name"] == "Python 3 (shared environment)"
    assert "pip " in rest  # researchers' `pip install --user`
