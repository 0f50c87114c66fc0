"""The Docker engine, and what of it belongs to one hubstack instance."""

import os
import subprocess
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


def local_addresses():
    """This machine's own addresses (every interface)."""
    try:
        out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}


def find_project(start=None):
    """The hubstack checkout: the nearest folder at or above start with compose.yml and hub/."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "compose.yml").is_file() and (folder / "hub" / "Dockerfile").is_file():
            return folder
    raise SettingsError(f"no hubstack checkout at or above {here}: run hubstack inside it, or pass -C DIR")


def user_containers(client, names, all=False):
    return client.containers.list(all=all, filters=names.label_filter(Role.USER_SERVER))


def instance_containers(client, names, role):
    return client.containers.list(all=True, filters=names.label_filter(role))


def instance_volumes(client, names, role=None):
    return client.volumes.list(filters=names.label_filter(role))


def user_networks(client, names):
    return client.networks.list(filters=names.label_filter(Role.USER_NETWORK))


def remove_quietly(network):
    """Remove a network unless a container still uses it (a server that is still stopping)."""
    try:
        network.remove()
    except DockerException:
        pass


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
    volumes and the egress log (external to Compose), and the checkout's share/ folder (else Docker makes it,
    owned by root). [(what, name, created?)]"""
    made = [("network", names.network, ensure_network(client, names)[1])]
    volumes = (
        (names.hub_data_volume, Role.HUB_DATA),
        (names.tls_data_volume, Role.TLS_DATA),
        (names.egress_log_volume, Role.EGRESS_LOG),
    )
    for name, role in volumes:
        made.append(("volume", name, ensure_volume(client, name, names.labels(role))[1]))
    (Path(project) / SHARE_FOLDER).mkdir(exist_ok=True)
    return made


def volume_attributes(client, name):
    try:
        return client.volumes.get(name).attrs
    except NotFound:
        return None


def bind_dataset_folders(client, names, catalogue):
    """A volume per folder dataset, bound to the folder (the hub mounts volumes only). One bound to
    another folder is made again: removing a bind volume leaves the folder and its files as they are."""
    made = []
    for dataset in catalogue.datasets:
        if not dataset.folder:
            continue
        name = names.dataset_volume(dataset.name)
        attrs = volume_attributes(client, name)
        if attrs is not None and (attrs.get("Options") or {}).get("device") == dataset.folder:
            continue
        if attrs is not None:
            try:
                client.volumes.get(name).remove()
            except DockerException as err:
                raise SettingsError(
                    f"dataset {dataset.name!r} moved to {dataset.folder}, but servers still mount its old folder: "
                    f"stop them (hubstack down) and run this again ({str(err)[:120]})"
                ) from None
        client.volumes.create(
            name,
            driver="local",
            driver_opts={"type": "none", "o": "bind", "device": dataset.folder},
            labels=names.labels(Role.DATASET, dataset=dataset.name),
        )
        made.append(name)
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
