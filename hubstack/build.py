"""`hubstack build`: base image, wheels, images, network, volumes.

Every step is idempotent and logs to .hubstack/logs/<step>.log; a failure
names its step and shows the tail of that log. `run()` returns how long each
step took, for the benchmarks. Steps that do not need each other run at
the same time (BUILD_JOBS): the wheel downloads beside the base image, then
every image as soon as its parent and its wheels are there.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
from docker.errors import APIError, NotFound

from . import assemble, base, engine, wheelhouse
from .common.contract import (
    CURRENT,
    ENV_MOUNT,
    ENV_RECIPE,
    ENV_VERSION_FILE,
    LABEL_INPUTS,
    PYTHON_REPOSITORY,
    Role,
    short_id,
)
from .errors import BuildError
from .images import IMAGES, PYTHON, Context, build_args

# Steps at once: image builds wait on the Debian mirror, on commits and on FUSE
# as much as on the CPU (a cold build took 189 s with 4 on a 2-core VM).
BUILD_JOBS = 4
BUILDER = assemble.fingerprint()
# The slowest first, so that they start while the quick ones fill in (measured: README.md, 'Benchmarks').
LONGEST_FIRST = {"notebook": 0, "hub-core": 1, Role.ENVIRONMENT: 2}
FILL_SCRIPT = f"{ENV_RECIPE}/fill-environment"  # environment/Dockerfile puts it there


class Builder:
    def __init__(self, client, settings, project, echo=click.echo):
        self.client, self.settings, self.project, self.echo = client, settings, Path(project), echo
        self.names = settings.names
        self.log_dir = self.project / ".hubstack" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.wheel_cache = wheelhouse.cache_folder(settings.raw.get("HUBSTACK_WHEEL_CACHE", ""))
        self.base_image = None
        self.wheels = {}  # role -> wheel files
        self.programs = {}  # role -> {name: program taken out of a wheel}
        self.times = {}  # step -> seconds
        self.echo_lock = threading.Lock()

    def say(self, text):
        with self.echo_lock:
            self.echo(text)

    # -- running and reporting steps ---------------------------------------
    def step(self, name, func, *args):
        log_path = self.log_dir / f"{name.replace(' ', '-')}.log"
        self.say(click.style(f"==> {name}", bold=True))
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
        self.say(f"    {name}: done in {self.times[name]:.1f} s")
        return result

    # -- the steps ------------------------------------------------------------
    def ensure_base(self, log):
        self.base_image = base.ensure(self.client, self.settings.base_image, lambda m: self.say(f"    {m}"), log)
        self.say(f"    base image: {self.base_image}")

    def fetch_wheels(self, log, image):
        lock = self.project / image.folder / "requirements.lock"
        files, count = wheelhouse.ensure(lock, self.wheel_cache, log, say=lambda m: self.say(f"    {image.role}: {m}"))
        self.wheels[image.role] = files
        self.programs[image.role] = {
            name: wheelhouse.script_of(wheel, name, self.wheel_cache)
            for name in image.programs
            for wheel in files
            if wheelhouse.wheel_pin(wheel.name)[0] == name
        }
        self.say(
            f"    {image.role}: {count} of {len(files)} wheels downloaded into {self.wheel_cache}"
            if count
            else f"    {image.role}: {len(files)} wheels, all in {self.wheel_cache}"
        )

    def tag(self, role):
        if role == PYTHON.role:
            return f"{PYTHON_REPOSITORY}:{short_id(self.client.images.get(self.base_image).id)}"
        return self.names.image(role)

    def build_image(self, log, image, nocache):
        tag = self.tag(image.role)
        parent = self.tag(image.parent) if image.parent else self.base_image
        args = build_args(image, parent)
        context = Context(self.project, image, self.wheels.get(image.role, ()), self.programs.get(image.role))
        inputs = context.digest({**args, "parent id": self.client.images.get(parent).id, "builder": BUILDER})
        existing = engine.image_or_none(self.client, tag)
        if not nocache and existing is not None and existing.labels.get(LABEL_INPUTS) == inputs:
            log.write(f"{tag}: inputs unchanged ({inputs[:12]}), not rebuilt\n")
            self.say(f"    {tag}: unchanged")
            return
        labels = {**({} if image is PYTHON else self.names.labels()), LABEL_INPUTS: inputs}
        twin = (
            None
            if nocache
            else next(iter(self.client.images.list(filters={"label": f"{LABEL_INPUTS}={inputs}"})), None)
        )
        if twin is not None:
            # Another instance's image built from the same inputs: the same layers, with our labels.
            assemble.relabel(self.client, twin, tag, labels)
            log.write(f"{tag}: the image {twin.id} of the same inputs ({inputs[:12]}), labelled\n")
            self.say(f"    {tag}: the same as {(twin.tags or [twin.short_id])[0]}, labelled for this instance")
            return
        dockerfile = (self.project / image.folder / "Dockerfile").read_text()
        assemble.build(
            self.client, dockerfile, context, args, tag, labels, log, say=lambda m: self.say(f"    {image.role}: {m}")
        )
        self.say(f"    {tag}: {self.client.images.get(tag).attrs['Size'] / 1e6:.0f} MB")

    def ensure_runtime(self, log):
        for what, name, made in engine.ensure_runtime(self.client, self.names, self.project):
            log.write(f"{what} {name}: {'created' if made else 'exists'}\n")
        self.say(f"    network {self.names.network}, volume {self.names.hub_data_volume}")

    def refresh_environment(self, log):
        """Fill a volume of the environment image's version from its wheels, then make it current.

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
                self.say(f"    {volume_name} is current")
                return version
        elif existing is not None:
            # Made by the engine, empty, when a container asked for it by name before we made it:
            # never taken for a complete copy.
            log.write(f"{volume_name}: not made by hubstack build, made again\n")
            existing.remove(force=True)
        engine.ensure_volume(self.client, volume_name, names.labels(Role.ENVIRONMENT, env_version=version))
        self.say(f"    filling {volume_name} from {len(self.wheels[Role.ENVIRONMENT])} wheels")
        box = assemble.Box(
            self.client,
            image,
            log,
            volumes={volume_name: {"bind": ENV_MOUNT, "mode": "rw"}},
            network_mode="none",  # everything it installs is in /tmp/wheels
            labels=names.labels(),
        )
        try:
            box.put(self.add_environment_wheels, "wheels")
            output = box.exec(
                [FILL_SCRIPT, version],
                env={"ENV_MOUNT": ENV_MOUNT, "ENV_RECIPE": ENV_RECIPE, "ENV_VERSION_FILE": ENV_VERSION_FILE},
            )
        finally:
            box.remove()
        image.tag(names.image(Role.ENVIRONMENT), CURRENT)
        self.say(f"    {volume_name}: {output.split()[-1]} MB, now current")
        self.prune_environments(log, keep=volume_name)
        return version

    def add_environment_wheels(self, tar):
        for wheel in self.wheels[Role.ENVIRONMENT]:
            assemble.add_file(tar, wheel, f"/tmp/wheels/{wheel.name}")

    def prune_environments(self, log, keep):
        for volume in engine.instance_volumes(self.client, self.names, Role.ENVIRONMENT):
            if volume.name == keep:
                continue
            try:
                volume.remove()
                self.say(f"    removed old environment {volume.name}")
            except APIError:
                self.say(f"    kept old environment {volume.name}: running servers still use it")
            log.write(f"old environment {volume.name} handled\n")

    # -- the whole build ------------------------------------------------------
    def build_one(self, image, nocache, wheels):
        if image.role in wheels:
            wheels[image.role].result()
        self.step(f"image {image.role}", self.build_image, image, nocache)
        if image.role == Role.ENVIRONMENT:
            self.step("shared environment volume", self.refresh_environment)

    def run(self, images=IMAGES, nocache=False):
        """Build images (and the shared Python image they stand on); returns {step: seconds}.

        nocache rebuilds from scratch the images asked for (PYTHON only when asked for: a new
        Python image would make every other image stale)."""
        started = time.monotonic()
        wanted = (PYTHON, *(i for i in images if i is not PYTHON))
        with ThreadPoolExecutor(BUILD_JOBS, thread_name_prefix="build") as pool:
            # A task waits only for downloads queued before it, so waiting never holds up what it needs.
            wheels = {
                i.role: pool.submit(self.step, f"wheels {i.role}", self.fetch_wheels, i) for i in wanted if i.wheels
            }
            tasks = [*wheels.values()]
            self.step("base image", self.ensure_base)
            self.build_one(PYTHON, nocache and PYTHON in images, wheels)

            def chain(image):  # an image, then the images built on it
                self.build_one(image, nocache and image in images, wheels)
                for child in wanted:
                    if child.parent == image.role and child is not PYTHON:
                        chain(child)

            others = {i.role for i in wanted if i is not PYTHON}
            roots = sorted(
                (i for i in wanted if i is not PYTHON and i.parent not in others),  # on images already there
                key=lambda i: LONGEST_FIRST.get(i.role, 99),
            )
            tasks += [pool.submit(chain, image) for image in roots]
            tasks.append(pool.submit(self.step, "network and hub volume", self.ensure_runtime))
            errors = [task.exception() for task in tasks if task.exception() is not None]
        if errors:
            raise next((e for e in errors if isinstance(e, BuildError)), errors[0])
        self.echo(click.style(f"build finished in {time.monotonic() - started:.1f} s", fg="green"))
        return dict(self.times)

    def missing(self):
        """What `up` must build first: nothing when every image and the environment is there."""
        wanted = [self.names.image(i.role) for i in IMAGES] + [self.names.current_environment]
        return [name for name in wanted if engine.image_or_none(self.client, name) is None]
