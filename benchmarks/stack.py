"""The instance the benchmarks measure, and bare containers to compare it with.

By default the benchmarks run their own dev-mode instance, `hubbench` on
127.0.0.1:8201, started by `hubstack up --dev` as an operator starts one, so
nothing of the operator's instances or the tests' is touched. A run's users
are named b<run id>..., its bare containers and volumes carry the label
hubstack.benchmark=<run id>, and only those are removed afterwards.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import requests

from hubstack import engine
from hubstack.settings import load, short_id

PROJECT = Path(__file__).resolve().parents[1]
BENCH_NAME, BENCH_PORT = "hubbench", 8201
BARE_PORT = 8888


class Stack:
    def __init__(self, name=BENCH_NAME, port=BENCH_PORT, project=PROJECT):
        self.project = Path(project)
        self.environ = {"HUBSTACK_NAME": name, "HUBSTACK_PORT": str(port), "HUBSTACK_BIND": "127.0.0.1", "DEV_MODE": "1"}
        engine.connect()  # a clear error when there is no engine
        # Up to 100 researchers' threads talk to the engine at once.
        self.client = docker.from_env(timeout=300, max_pool_size=128)
        self.settings = load(environ={**self.hub_environment(name), **self.environ})
        self.run_id = uuid.uuid4().hex[:6]

    def hub_environment(self, name):
        """The settings a running hub was started with (limits above all), so bare runs match its servers."""
        try:
            env = self.client.containers.get(f"{name}-hub").attrs["Config"]["Env"] or []
        except docker.errors.NotFound:
            return {}
        pairs = dict(item.partition("=")[::2] for item in env)
        return {k: v for k, v in pairs.items() if k.startswith("HUBSTACK_USER_")}

    @property
    def name(self):
        return self.settings.name

    @property
    def url(self):
        return self.settings.url

    def hubstack(self, *args, timeout=3600, env=None):
        """The CLI, as the operator runs it; returns (seconds, stdout)."""
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "hubstack", "-C", str(self.project), *args],
                                env={**os.environ, **self.environ, **(env or {})},
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            said = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
            raise SystemExit(f"bench: hubstack {' '.join(args)} exited {result.returncode}: {said}")
        return time.monotonic() - started, result.stdout

    def up(self):
        self.hubstack("up", "--dev")

    def healthy(self):
        try:
            return requests.get(f"{self.url}/hub/health", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def fresh(self):
        """Start the benchmark instance from nothing but its images and shared environment.

        Only for the benchmarks' own instance: all of its data is benchmark data.
        """
        if self.name != BENCH_NAME:
            raise SystemExit(f"bench: refusing to wipe {self.name}: only {BENCH_NAME} is the benchmarks' own")
        flt = {"label": [f"hubstack.instance={self.name}"]}
        for container in self.client.containers.list(all=True, filters=flt):
            container.remove(force=True)
        for volume in self.client.volumes.list(filters=flt):
            if volume.attrs["Labels"].get("hubstack.role") != "environment":
                volume.remove(force=True)
        self.up()

    # -- what the benchmarks look at ---------------------------------------
    @property
    def hub(self):
        return self.settings.hub_container

    def server_container(self, user):
        """The container DockerSpawner runs for a user name (our names escape to themselves)."""
        return f"{self.settings.user_prefix}-{user}"

    def home_volume(self, user):
        return self.settings.home_volume_template.format(username=user)

    def env_volume(self):
        current = self.client.images.get(f"{self.settings.image('environment')}:current")
        return self.settings.env_volume(short_id(current.id))

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
        labels = {**self.settings.labels, "hubstack.role": "benchmark", "hubstack.benchmark": self.run_id}
        self.client.volumes.create(home, labels=labels)
        return self.client.containers.run(
            self.settings.image("notebook"),
            ["jupyter", "server", "--ip=0.0.0.0", f"--port={BARE_PORT}", "--IdentityProvider.token=",
             "--ServerApp.disable_check_xsrf=True", "--ServerApp.root_dir=/home/jovyan"],
            detach=True, name=f"{self.settings.name}-bare-{user}", network=self.settings.network, labels=labels,
            volumes={home: {"bind": "/home/jovyan", "mode": "rw"}, self.env_volume(): {"bind": "/opt/conda", "mode": "ro"}},
            mem_limit=limits.mem_bytes, memswap_limit=limits.mem_bytes, nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids, cap_drop=["ALL"], security_opt=["no-new-privileges"], remove=True,
        )

    def ip(self, container):
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][self.settings.network]["IPAddress"]

    def remove_bare(self, container):
        try:
            container.stop(timeout=5)
            container.wait(condition="removed", timeout=60)
        except docker.errors.NotFound:
            pass

    def cleanup(self):
        """Remove what this run made: bare containers, and the home volumes of its users."""
        prefix = self.user_prefix
        for container in self.client.containers.list(all=True, filters={"label": f"hubstack.benchmark={self.run_id}"}):
            container.remove(force=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            servers = [c for c in self.client.containers.list(all=True, filters={"label": f"hubstack.instance={self.name}"})
                       if c.labels.get("hubstack.user", "").startswith(prefix)]
            if not servers:
                break
            time.sleep(1)
        for volume in self.client.volumes.list(filters={"label": f"hubstack.instance={self.name}"}):
            labels = volume.attrs["Labels"] or {}
            if labels.get("hubstack.benchmark") == self.run_id or labels.get("hubstack.user", "").startswith(prefix):
                try:
                    volume.remove()
                except docker.errors.APIError:
                    pass  # still in use by a server the hub is stopping: left for the next fresh()
