"""The Docker engine, and what of it belongs to one hubstack instance."""

import os
from pathlib import Path

import docker
from docker.errors import DockerException, NotFound

from .common.contract import SHARE_FOLDER, Role
from .common.parse import SettingsError
from .errors import EngineError


def connect(timeout=120, **kwargs):
    """A client to a Docker engine that answers, or EngineError saying how to get one."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout, **kwargs)
        client.ping()
        return client
    except (DockerException, OSError) as err:
        reason = str(err).splitlines()[0][:160]
        raise EngineError(
            f"cannot reach the Docker engine at {where} ({reason}): start it "
            "(e.g. `systemctl start docker`) or point DOCKER_HOST at one that runs"
        ) from None


def find_project(start=None):
    """The hubstack checkout: the nearest folder at or above start with compose.yml and hub/."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "compose.yml").is_file() and (folder / "hub" / "Dockerfile").is_file():
            return folder
    raise SettingsError(f"no hubstack checkout at or above {here}: run hubstack inside it, or pass -C DIR")


def user_containers(client, names, all=False):
    return client.containers.list(all=all, filters=names.label_filter(Role.USER_SERVER))


def instance_volumes(client, names, role=None):
    return client.volumes.list(filters=names.label_filter(role))


def ensure_network(client, names):
    try:
        return client.networks.get(names.network), False
    except NotFound:
        return client.networks.create(names.network, driver="bridge", labels=names.labels()), True


def ensure_volume(client, name, labels):
    try:
        return client.volumes.get(name), False
    except NotFound:
        return client.volumes.create(name, labels=labels), True


def ensure_runtime(client, names, project):
    """What compose.yml expects to exist: the network, the hub's and the tls service's data
    volumes (external to Compose), and the checkout's share/ folder (else Docker makes it,
    owned by root). [(what, name, created?)]"""
    made = [("network", names.network, ensure_network(client, names)[1])]
    for name, role in ((names.hub_data_volume, Role.HUB_DATA), (names.tls_data_volume, Role.TLS_DATA)):
        made.append(("volume", name, ensure_volume(client, name, names.labels(role))[1]))
    (Path(project) / SHARE_FOLDER).mkdir(exist_ok=True)
    return made


def image_or_none(client, name):
    try:
        return client.images.get(name)
    except NotFound:
        return None


def container_or_none(client, name):
    try:
        return client.containers.get(name)
    except NotFound:
        return None
