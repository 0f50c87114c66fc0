"""`hubstack build`: base image, wheelhouses, images, network, volumes.

Every step is idempotent and logs to .hubstack/logs/<step>.log; a failure
names its step and shows the tail of that log.
"""

import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import click
from docker.errors import APIError, NotFound
from docker.utils.build import exclude_paths

from . import base, engine, wheelhouse
from .settings import short_id


class BuildError(RuntimeError):
    def __init__(self, step, reason, log_path):
        self.step, self.reason, self.log_path = step, reason, log_path
        super().__init__(f"{step} failed: {reason}")

    def tail(self, lines=20):
        try:
            return "".join(deque(open(self.log_path, errors="replace"), maxlen=lines))
        except OSError:
            return ""


@dataclass(frozen=True)
class Image:
    role: str  # hub-core, hub, notebook, environment
    context: str  # relative to the project folder
    dockerfile: str = "Dockerfile"  # relative to the context
    wheels: str = ""  # folder of requirements.lock and wheels/, if any
    parent: str = "python"  # the role of the image it is built FROM ("" for the base)


# Shared by every instance built on the same base, like the base itself, so
# that a second instance reuses all cached layers.
PYTHON = Image("python", "python", parent="")
# The images of one instance, named and labelled with HUBSTACK_NAME.
IMAGES = (
    Image("hub-core", "hub/core", wheels="hub/core"),
    Image("hub", ".", dockerfile="hub/Dockerfile", parent="hub-core"),
    Image("notebook", "notebook", wheels="notebook"),
    Image("environment", "notebook/environment", wheels="notebook/environment"),
    Image("tls", "tls"),  # Caddy, the HTTPS terminator (compose.yml's tls service)
)
ENV_MOUNT = "/opt/conda"
INPUTS_LABEL = "hubstack.inputs"  # digest of everything an image is built from (input_digest)
ENV_VERSION_FILE = ".hubstack-env-version"


def input_digest(context, dockerfile, args):
    """sha256 of what `docker build` would be given: the files it sends (after
    .dockerignore), their modes and contents, the Dockerfile and the build
    arguments (with the parent image's id, so a rebuilt parent counts)."""
    context = Path(context)
    ignore = context / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if ignore.is_file() else []
    digest = hashlib.sha256(json.dumps([dockerfile, sorted(args.items())]).encode())
    for name in sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile)):
        path = context / name
        if path.is_file() and not path.is_symlink():
            digest.update(f"\0{name}\0{path.stat().st_mode & 0o777:o}\0".encode())
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        else:
            digest.update(f"\0{name}\0{'link:' + str(path.readlink()) if path.is_symlink() else 'dir'}".encode())
    return digest.hexdigest()


class Builder:
    def __init__(self, client, settings, project, echo=click.echo):
        self.client, self.settings, self.project, self.echo = client, settings, Path(project), echo
        self.log_dir = self.project / ".hubstack" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.base_image = None

    # -- running and reporting steps ---------------------------------------
    def step(self, name, func, *args):
        log_path = self.log_dir / f"{name.replace(' ', '-')}.log"
        self.echo(click.style(f"==> {name}", bold=True))
        started = time.monotonic()
        with open(log_path, "w") as log:
            try:
                result = func(log, *args)
            except BuildError:
                raise
            except Exception as err:  # any failure of a step: name it, keep its log
                log.write(f"\n{type(err).__name__}: {err}\n")
                log.flush()
                raise BuildError(name, str(err).splitlines()[0] if str(err) else type(err).__name__, log_path) from err
        self.echo(f"    done in {time.monotonic() - started:.1f} s")
        return result

    # -- the steps ------------------------------------------------------------
    def ensure_base(self, log):
        self.base_image = base.ensure(self.client, self.settings.base_image, lambda m: self.echo(f"    {m}"), log)
        self.echo(f"    base image: {self.base_image}")

    def fill_wheelhouse(self, log, folder):
        folder = self.project / folder
        count = wheelhouse.fill(folder / "requirements.lock", folder / "wheels", log)
        self.echo(f"    {count} wheels downloaded" if count else "    wheelhouse complete")

    def tag(self, role):
        if role == PYTHON.role:
            return f"hubstack-python:{short_id(self.client.images.get(self.base_image).id)}"
        return self.settings.image(role)

    def build_image(self, log, image, nocache):
        tag = self.tag(image.role)
        parent = self.tag(image.parent) if image.parent else self.base_image
        arg = f"{(image.parent or 'base').replace('-', '_').upper()}_IMAGE"  # e.g. HUB_CORE_IMAGE
        buildargs = {arg: parent}
        inputs = input_digest(self.project / image.context, image.dockerfile,
                              {**buildargs, "parent id": self.client.images.get(parent).id})
        existing = engine.image_or_none(self.client, tag)
        if not nocache and existing is not None and existing.labels.get(INPUTS_LABEL) == inputs:
            # Nothing it is built from changed: skip even sending the context (the
            # environment's wheels are hundreds of MB) and Docker's cache checks.
            log.write(f"{tag}: inputs unchanged ({inputs[:12]}), not rebuilt\n")
            self.echo(f"    {tag}: unchanged")
            return
        labels = {**({} if image is PYTHON else self.settings.labels), INPUTS_LABEL: inputs}
        stream = self.client.api.build(
            path=str(self.project / image.context), dockerfile=image.dockerfile, tag=tag,
            buildargs=buildargs, labels=labels, rm=True, forcerm=True, nocache=nocache, decode=True,
        )
        for chunk in stream:
            text = chunk.get("stream", "")
            log.write(text)
            if text.startswith("Step "):
                self.echo(f"    {text.strip()[:110]}")
            if "error" in chunk:
                log.write(chunk["error"] + "\n")
                raise RuntimeError(chunk["error"].strip())
        self.echo(f"    {tag}: {self.client.images.get(tag).attrs['Size'] / 1e6:.0f} MB")

    def ensure_runtime(self, log):
        s = self.settings
        _, made = engine.ensure_network(self.client, s)
        log.write(f"network {s.network}: {'created' if made else 'exists'}\n")
        _, made = engine.ensure_volume(self.client, s.hub_data_volume, {**s.labels, "hubstack.role": "hub-data"})
        log.write(f"volume {s.hub_data_volume}: {'created' if made else 'exists'}\n")
        _, made = engine.ensure_volume(self.client, s.tls_data_volume, {**s.labels, "hubstack.role": "tls-data"})
        log.write(f"volume {s.tls_data_volume}: {'created' if made else 'exists'}\n")
        (self.project / "share").mkdir(exist_ok=True)
        self.echo(f"    network {s.network}, volume {s.hub_data_volume}")

    def refresh_environment(self, log):
        """Copy the environment image into its own volume, then make it current.

        Each environment version gets a new volume, so running servers keep the
        one they started with; new servers get the new one once it is complete.
        """
        s = self.settings
        image = self.client.images.get(s.image("environment"))
        version = short_id(image.id)
        volume_name = s.env_volume(version)
        current = engine.image_or_none(self.client, f"{s.image('environment')}:current")
        if current is not None and current.id == image.id:
            try:
                self.client.volumes.get(volume_name)
                self.echo(f"    {volume_name} is current")
                return version
            except NotFound:
                pass
        labels = {**s.labels, "hubstack.role": "environment", "hubstack.env.version": version}
        engine.ensure_volume(self.client, volume_name, labels)
        self.echo(f"    copying {ENV_MOUNT} into {volume_name}")
        script = (
            "set -e; find /target -mindepth 1 -delete; "
            f"cp -a {ENV_MOUNT}/. /target/; echo {version} > /target/{ENV_VERSION_FILE}; du -sm /target"
        )
        output = self.client.containers.run(
            image.id, ["sh", "-c", script], remove=True, user="0",
            volumes={volume_name: {"bind": "/target", "mode": "rw"}}, labels=s.labels,
        )
        log.write(output.decode())
        image.tag(s.image("environment"), "current")
        self.echo(f"    {volume_name}: {output.decode().split()[0]} MB, now current")
        self.prune_environments(log, keep=volume_name)
        return version

    def prune_environments(self, log, keep):
        for volume in self.client.volumes.list(filters=engine.instance_filter(self.settings, role="environment")):
            if volume.name == keep:
                continue
            try:
                volume.remove()
                self.echo(f"    removed old environment {volume.name}")
            except APIError:
                self.echo(f"    kept old environment {volume.name}: running servers still use it")
            log.write(f"old environment {volume.name} handled\n")

    # -- the whole build ------------------------------------------------------
    def run(self, images=IMAGES, nocache=False):
        started = time.monotonic()
        self.step("base image", self.ensure_base)
        for image in (PYTHON, *images):
            if image.wheels:
                self.step(f"wheelhouse {image.role}", self.fill_wheelhouse, image.wheels)
            self.step(f"image {image.role}", self.build_image, image, nocache)
        self.step("network and hub volume", self.ensure_runtime)
        if any(i.role == "environment" for i in images):
            self.step("shared environment volume", self.refresh_environment)
        self.echo(click.style(f"build finished in {time.monotonic() - started:.1f} s", fg="green"))

    def missing(self):
        """What `up` must build first: nothing when every image and the environment is there."""
        s = self.settings
        names = [s.image(i.role) for i in IMAGES] + [f"{s.image('environment')}:current"]
        return [n for n in names if engine.image_or_none(self.client, n) is None]
