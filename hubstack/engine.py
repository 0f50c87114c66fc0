"""The Docker engine, and what of it belongs to one hubstack instance."""

import os
from pathlib import Path

import docker
from docker.errors import DockerException, NotFound

from .settings import SettingsError


class EngineError(RuntimeError):
    pass


def connect():
    """A client to a Docker engine that answers, or EngineError saying how to get one."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=120)
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


def instance_filter(settings, **extra):
    labels = [f"hubstack.instance={settings.name}"] + [f"hubstack.{k}={v}" for k, v in extra.items()]
    return {"label": labels}


def user_containers(client, settings, all=False):
    return client.containers.list(all=all, filters=instance_filter(settings, role="user-server"))


def instance_volumes(client, settings):
    return client.volumes.list(filters=instance_filter(settings))


def ensure_network(client, settings):
    try:
        return client.networks.get(settings.network), False
    except NotFound:
        return client.networks.create(settings.network, driver="bridge", labels=settings.labels), True


def ensure_volume(client, name, labels):
    try:
        return client.volumes.get(name), False
    except NotFound:
        return client.volumes.create(name, labels=labels), True


def image_or_none(client, name):
    try:
        return client.images.get(name)
    except NotFound:
        return None


def hub_container(client, settings):
    try:
        return client.containers.get(settings.hub_container)
    except NotFound:
        return None
