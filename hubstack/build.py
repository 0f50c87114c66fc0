"""`hubstack build`: base image, wheels, images, network, volumes.

Every step is idempotent and logs to .hubstack/logs/<step>.log; a failure
names its step and shows the tail of that log. `run()` returns how long each
step took, for the benchmarks.
"""

import tempfile
import time
from pathlib import Path

import click
from docker.errors import APIError, NotFound

from . import base, engine, wheelhouse
from .common.contract import CURRENT, ENV_MOUNT, ENV_VERSION_FILE, LABEL_INPUTS, PYTHON_REPOSITORY, Role, short_id
from .errors import BuildError
from .images import IMAGES, PYTHON, Context, build_args


class Builder:
    def __init__(self, client, settings, project, echo=click.echo):
        self.client, self.settings, self.project, self.echo = client, settings, Path(project), echo
        self.names = settings.names
        self.log_dir = self.project / ".hubstack" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.wheel_cache = wheelhouse.cache_folder(settings.raw.get("HUBSTACK_WHEEL_CACHE", ""))
        self.base_image = None
        self.wheels = {}  # role -> wheel files
        self.times = {}  # step -> seconds

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
        self.times[name] = time.monotonic() - started
        self.echo(f"    done in {self.times[name]:.1f} s")
        return result

    # -- the steps ------------------------------------------------------------
    def ensure_base(self, log):
        self.base_image = base.ensure(self.client, self.settings.base_image, lambda m: self.echo(f"    {m}"), log)
        self.echo(f"    base image: {self.base_image}")

    def fetch_wheels(self, log, image):
        lock = self.project / image.folder / "requirements.lock"
        files, count = wheelhouse.ensure(lock, self.wheel_cache, log, say=lambda m: self.echo(f"    {m}"))
        self.wheels[image.role] = files
        self.echo(
            f"    {count} of {len(files)} wheels downloaded into {self.wheel_cache}"
            if count
            else f"    {len(files)} wheels, all in {self.wheel_cache}"
        )

    def tag(self, role):
        if role == PYTHON.role:
            return f"{PYTHON_REPOSITORY}:{short_id(self.client.images.get(self.base_image).id)}"
        return self.names.image(role)

    def build_image(self, log, image, nocache):
        tag = self.tag(image.role)
        parent = self.tag(image.parent) if image.parent else self.base_image
        args = build_args(image, parent)
        context = Context(self.project, image, self.wheels.get(image.role, ()))
        inputs = context.digest({**args, "parent id": self.client.images.get(parent).id})
        existing = engine.image_or_none(self.client, tag)
        if not nocache and existing is not None and existing.labels.get(LABEL_INPUTS) == inputs:
            # Nothing it is built from changed: skip even sending the context (the
            # environment's wheels are hundreds of MB) and Docker's cache checks.
            log.write(f"{tag}: inputs unchanged ({inputs[:12]}), not rebuilt\n")
            self.echo(f"    {tag}: unchanged")
            return
        labels = {**({} if image is PYTHON else self.names.labels()), LABEL_INPUTS: inputs}
        with tempfile.TemporaryFile() as tar:
            stream = self.client.api.build(
                fileobj=context.write_tar(tar),
                custom_context=True,
                tag=tag,
                buildargs=args,
                labels=labels,
                rm=True,
                forcerm=True,
                nocache=nocache,
                decode=True,
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
        for what, name, made in engine.ensure_runtime(self.client, self.names, self.project):
            log.write(f"{what} {name}: {'created' if made else 'exists'}\n")
        self.echo(f"    network {self.names.network}, volume {self.names.hub_data_volume}")

    def refresh_environment(self, log):
        """Copy the environment image into its own volume, then make it current.

        Each environment version gets a new volume, so running servers keep the
        one they started with; new servers get the new one once it is complete.
        """
        names = self.names
        image = self.client.images.get(names.image(Role.ENVIRONMENT))
        version = short_id(image.id)
        volume_name = names.env_volume(version)
        current = engine.image_or_none(self.client, names.current_environment)
        try:
            existing = self.client.volumes.get(volume_name)
        except NotFound:
            existing = None
        ours = names.labels(Role.ENVIRONMENT, env_version=version)
        if existing is not None and ours.items() <= (existing.attrs.get("Labels") or {}).items():
            if current is not None and current.id == image.id:
                self.echo(f"    {volume_name} is current")
                return version
        elif existing is not None:
            # Made by the engine, empty, when a container asked for it by name before we made it:
            # never taken for a complete copy.
            log.write(f"{volume_name}: not made by hubstack build, made again\n")
            existing.remove(force=True)
        engine.ensure_volume(self.client, volume_name, names.labels(Role.ENVIRONMENT, env_version=version))
        self.echo(f"    copying {ENV_MOUNT} into {volume_name}")
        script = (
            "set -e; find /target -mindepth 1 -delete; "
            f"cp -a {ENV_MOUNT}/. /target/; echo {version} > /target/{ENV_VERSION_FILE}; du -sm /target"
        )
        output = self.client.containers.run(
            image.id,
            ["sh", "-c", script],
            remove=True,
            user="0",
            volumes={volume_name: {"bind": "/target", "mode": "rw"}},
            labels=names.labels(),
        )
        log.write(output.decode())
        image.tag(names.image(Role.ENVIRONMENT), CURRENT)
        self.echo(f"    {volume_name}: {output.decode().split()[0]} MB, now current")
        self.prune_environments(log, keep=volume_name)
        return version

    def prune_environments(self, log, keep):
        for volume in engine.instance_volumes(self.client, self.names, Role.ENVIRONMENT):
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
        """Build images (and the shared Python image they stand on); returns {step: seconds}.

        nocache rebuilds from scratch the images asked for (PYTHON only when asked for: a new
        Python image would make every other image stale)."""
        started = time.monotonic()
        self.step("base image", self.ensure_base)
        for image in (PYTHON, *(i for i in images if i is not PYTHON)):
            if image.wheels:
                self.step(f"wheels {image.role}", self.fetch_wheels, image)
            self.step(f"image {image.role}", self.build_image, image, nocache and image in images)
        self.step("network and hub volume", self.ensure_runtime)
        if any(i.role == Role.ENVIRONMENT for i in images):
            self.step("shared environment volume", self.refresh_environment)
        self.echo(click.style(f"build finished in {time.monotonic() - started:.1f} s", fg="green"))
        return dict(self.times)

    def missing(self):
        """What `up` must build first: nothing when every image and the environment is there."""
        wanted = [self.names.image(i.role) for i in IMAGES] + [self.names.current_environment]
        return [name for name in wanted if engine.image_or_none(self.client, name) is None]
