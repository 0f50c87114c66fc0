"""The instance the benchmarks measure, and bare containers to compare it with.

By default the benchmarks run their own dev-mode instance, `hubbench` on
127.0.0.1:8201, started by `hubstack up --dev` as an operator starts one, so
nothing of the operator's instances or the tests' is touched. A run's users
are named b<run id>..., its bare containers and volumes carry the label
hubstack.benchmark=<run id>, and only those are removed afterwards.
"""

import contextlib
import os
import time
import uuid
from pathlib import Path

import docker
import requests

from hubstack import engine
from hubstack.common.contract import (
    ENV_MOUNT,
    HEALTH_PATH,
    LABEL_BENCHMARK,
    LABEL_ROLE,
    LABEL_USER,
    USER_HOME,
    Names,
    Role,
    short_id,
)
from hubstack.common.parse import SettingsError
from hubstack.errors import HubstackError
from hubstack.stack import Instance, Stack

PROJECT = Path(__file__).resolve().parents[1]
BENCH_NAME, BENCH_PORT = "hubbench", 8201
BARE_PORT = 8888


class BenchInstance:
    """The instance under measurement, through hubstack's own Stack (as the CLI drives it)."""

    def __init__(self, name=BENCH_NAME, port=BENCH_PORT, project=PROJECT):
        self.project = Path(project)
        self.environ = {
            **os.environ,
            "HUBSTACK_NAME": name,
            "HUBSTACK_PORT": str(port),
            "HUBSTACK_BIND": "127.0.0.1",
            "DEV_MODE": "1",
        }
        engine.connect()  # a clear error when there is no engine
        # Up to 100 researchers' threads talk to the engine at once.
        self.client = docker.from_env(timeout=300, max_pool_size=128)
        self.settings = Instance(self.project).settings(environ={**self.environ, **self.hub_environment(name)})
        self.run_id = uuid.uuid4().hex[:6]

    def running_hub_env(self, name):
        """The environment a running hub of instance name was started with ({} when none runs)."""
        hub = engine.container_or_none(self.client, Names(name).hub_container)
        return dict(item.partition("=")[::2] for item in (hub.attrs["Config"]["Env"] or [])) if hub else {}

    def hub_environment(self, name):
        """The settings a running hub was started with (limits above all), so bare runs match its servers."""
        return {k: v for k, v in self.running_hub_env(name).items() if k.startswith("HUBSTACK_USER_")}

    @property
    def name(self):
        return self.settings.name

    def spawn_concurrency(self):
        """The servers the hub under measurement starts at once (HUBSTACK_SPAWN_CONCURRENCY as it runs)."""
        value = self.running_hub_env(self.name).get("HUBSTACK_SPAWN_CONCURRENCY")
        return int(value) if value else self.settings.limits.spawn_concurrency

    @property
    def names(self):
        return self.settings.names

    @property
    def url(self):
        return self.settings.url

    def stack(self, quiet=True):
        try:
            settings = Instance(self.project).checked_settings(environ=self.environ)
        except SettingsError as err:
            raise SystemExit(f"bench: {err}") from None
        return Stack(self.project, settings, self.client, echo=(lambda *_: None) if quiet else print)

    def build(self):
        """`hubstack build`, through the library: (seconds, {step: seconds})."""
        started = time.monotonic()
        try:
            steps = self.stack().build()
        except HubstackError as err:
            raise SystemExit(f"bench: hubstack build failed: {err}") from None
        return time.monotonic() - started, steps

    def up(self):
        try:
            self.stack().up()
        except HubstackError as err:
            raise SystemExit(f"bench: hubstack up failed: {err}") from None

    def down(self):
        self.stack().down()

    @contextlib.contextmanager
    def settings_changed(self):
        """For a benchmark that starts the hub again with other settings (changed in the environ it
        yields): afterwards the settings, and the hub, are as they were."""
        before = dict(self.environ)
        try:
            yield self.environ
        finally:
            self.environ.clear()
            self.environ.update(before)
            self.up()

    def healthy(self):
        try:
            return requests.get(f"{self.url}{HEALTH_PATH}", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def fresh(self):
        """Start the benchmark instance from nothing but its images and shared environment.

        Only for the benchmarks' own instance: all of its data is benchmark data.
        """
        if self.name != BENCH_NAME:
            raise SystemExit(f"bench: refusing to wipe {self.name}: only {BENCH_NAME} is the benchmarks' own")
        flt = self.names.label_filter()
        for container in self.client.containers.list(all=True, filters=flt):
            container.remove(force=True)
        for volume in self.client.volumes.list(filters=flt):
            if volume.attrs["Labels"].get(LABEL_ROLE) != Role.ENVIRONMENT:
                volume.remove(force=True)
        self.up()

    # -- what the benchmarks look at ---------------------------------------
    @property
    def hub(self):
        return self.names.hub_container

    def server_container(self, user):
        """The container DockerSpawner runs for a user name (our names escape to themselves)."""
        return f"{self.names.user_prefix}-{user}"

    def home_volume(self, user):
        return self.names.home_volume_template.format(username=user)

    def env_volume(self):
        current = self.client.images.get(self.names.current_environment)
        return self.names.env_volume(short_id(current.id))

    @property
    def user_prefix(self):
        """b<run id>: user names only this run uses, so cleanup cannot reach anyone else's.

        Letters and digits only, which DockerSpawner's escaping leaves as they are.
        """
        return f"b{self.run_id}"

    def user_name(self, kind, i):
        return f"{self.user_prefix}{kind}{i}"

    # -- a bare container: the baseline -------------------------------------
    def bare_run(self, user):
        """`docker run` of the notebook image as the spawner runs it (same mounts, limits, network).

        The server is Jupyter Server itself on the same image, without the hub's
        single-user wrapper, so it needs no hub to talk to.
        """
        limits = self.settings.limits
        home = self.home_volume(user)
        labels = self.names.labels(Role.BENCHMARK, benchmark=self.run_id)
        self.client.volumes.create(home, labels=labels)
        return self.client.containers.run(
            self.names.image("notebook"),
            [
                "jupyter",
                "server",
                "--ip=0.0.0.0",
                f"--port={BARE_PORT}",
                "--IdentityProvider.token=",
                "--ServerApp.disable_check_xsrf=True",
                f"--ServerApp.root_dir={USER_HOME}",
            ],
            detach=True,
            name=f"{self.name}-bare-{user}",
            network=self.names.network,
            labels=labels,
            volumes={home: {"bind": USER_HOME, "mode": "rw"}, self.env_volume(): {"bind": ENV_MOUNT, "mode": "ro"}},
            mem_limit=limits.mem_bytes,
            nano_cpus=int(limits.cpus * 1e9),
            remove=True,
            **limits.host_config(),
        )

    def ip(self, container):
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][self.names.network]["IPAddress"]

    def remove_bare(self, container):
        try:
            container.stop(timeout=5)
            container.wait(condition="removed", timeout=60)
        except docker.errors.NotFound:
            pass

    def cleanup(self):
        """Remove what this run made: bare containers, and the home volumes of its users."""
        prefix = self.user_prefix
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL_BENCHMARK}={self.run_id}"}):
            container.remove(force=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            servers = [
                c
                for c in self.client.containers.list(all=True, filters=self.names.label_filter())
                if c.labels.get(LABEL_USER, "").startswith(prefix)
            ]
            if not servers:
                break
            time.sleep(1)
        # A volume can be in use a while longer: a server the hub is still stopping, or the hub's
        # periodic du of every home (hubstack_hub.usage) mounting it read-only. Tried again for a minute.
        deadline = time.monotonic() + 60
        while True:
            left = [
                v
                for v in self.client.volumes.list(filters=self.names.label_filter())
                if (v.attrs["Labels"] or {}).get(LABEL_BENCHMARK) == self.run_id
                or (v.attrs["Labels"] or {}).get(LABEL_USER, "").startswith(prefix)
            ]
            for volume in left:
                try:
                    volume.remove()
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError:
                    continue
            if not left or time.monotonic() > deadline:
                break
            time.sleep(1)
