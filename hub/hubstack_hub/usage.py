"""What each researcher uses, in the hub's /hub/metrics: CPU and memory of every running
user server of this instance, and the size of every home volume.

A task in the hub asks the Docker engine every INTERVAL seconds for the one-shot stats
of each user server, many at once in threads of its own (each answer waits for the
engine's next one-second sample). Every HOMES_INTERVAL seconds, or sooner when a
server runs whose home was not measured yet, `du` measures the home volumes in a
short-lived container that mounts them read-only, without a network. (The engine's
own disk usage, `docker system df`, is no way: Docker 20.10 sizes every image and
container layer too, 43 s of the engine's CPU with ten servers here, and newer
engines walk every volume, the shared environment and the datasets included.)
A scrape only reads the figures of the last round: it never waits for the engine.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from hubstack.common.contract import LABEL_SERVER, LABEL_USER, USER_HOME, Role

INTERVAL = 15  # seconds between two rounds of container stats: Prometheus's default scrape interval
HOMES_INTERVAL = 300  # seconds between two measures of the home volumes
NEW_HOME_WAIT = 30  # a running server's home not measured yet: measured this long after the last measure at most
CONCURRENCY = 16  # stats asked at once (threads): 100 servers in about 7 s
HOMES_AT_ONCE = 100  # home volumes one measuring container mounts
MEASURED_AT = "/homes"  # where it mounts them, each under its volume name

# The names a dashboard or `hubstack metrics` reads (README.md, 'Metrics').
CPU = "hubstack_user_server_cpu_seconds"  # a counter: exposed as ..._total
MEMORY = "hubstack_user_server_memory_working_set_bytes"
HOME = "hubstack_user_home_bytes"
GATHER = "hubstack_usage_gather_seconds"

log = logging.getLogger("JupyterHub")


def working_set(memory_stats):
    """Memory the kernel cannot simply drop, what the memory limit is held to: usage less inactive
    file cache, as `docker stats` and the kubelet count it (cgroup v1 and v2 name the cache apart)."""
    stats = memory_stats.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return max(memory_stats.get("usage", 0) - inactive, 0)


@dataclass(frozen=True)
class Server:
    user: str
    server: str
    cpu_seconds: float
    memory_bytes: int


def server_figures(container, stats):
    """A Server from a container of the engine's list and its one-shot stats; None when it has none
    (it stopped in between)."""
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
    memory = stats.get("memory_stats") or {}
    if cpu is None or "usage" not in memory:
        return None
    labels = container.get("Labels") or {}
    return Server(labels.get(LABEL_USER, ""), labels.get(LABEL_SERVER, ""), cpu / 1e9, working_set(memory))


def home_volume(container):
    """The name of the volume mounted as a user server's home."""
    return next(
        (m.get("Name") for m in container.get("Mounts") or [] if m.get("Destination") == USER_HOME),
        None,
    )


def measure_command(volumes):
    """du of each volume, in bytes of disk used, each line '<bytes>\t/homes/<volume>'."""
    return ["du", "--summarize", "--block-size=1", *(f"{MEASURED_AT}/{v}" for v in volumes)]


def parse_du(output):
    """{volume: bytes} of du's output; lines of what it could not read are not sizes."""
    sizes = {}
    for line in output.splitlines():
        size, _, path = line.partition("\t")
        if size.isdigit() and path.startswith(f"{MEASURED_AT}/"):
            sizes[path[len(MEASURED_AT) + 1 :]] = int(size)
    return sizes


def measure_volumes(engine, names, volumes, timeout=600):
    """{volume: bytes} of volumes, measured by du in a container of the hub's image that mounts
    them read-only: no network, no capability but reading every file, removed at once."""
    container = engine.create_container(
        names.image("hub"),
        measure_command(volumes),
        labels=names.labels(Role.USAGE),
        network_disabled=True,
        host_config=engine.create_host_config(
            binds={v: {"bind": f"{MEASURED_AT}/{v}", "mode": "ro"} for v in volumes},
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            cap_add=["DAC_READ_SEARCH"],  # a researcher's unreadable folder is measured too
            security_opt=["no-new-privileges"],
        ),
    )
    try:
        engine.start(container)
        engine.wait(container, timeout=timeout)  # du says 1 when something could not be read: sizes all the same
        return parse_du(engine.logs(container, stdout=True, stderr=False).decode(errors="replace"))
    finally:
        engine.remove_container(container, force=True)


def home_sizes(engine, names):
    """{volume: (user, bytes)} of this instance's home volumes."""
    homes = {
        v["Name"]: (v.get("Labels") or {}).get(LABEL_USER, "")
        for v in engine.volumes(filters=names.label_filter(Role.HOME)).get("Volumes") or []
    }
    volumes, sizes = sorted(homes), {}
    for start in range(0, len(volumes), HOMES_AT_ONCE):
        sizes.update(measure_volumes(engine, names, volumes[start : start + HOMES_AT_ONCE]))
    return {volume: (homes[volume], size) for volume, size in sizes.items()}


@dataclass
class Figures:
    servers: list = field(default_factory=list)
    homes: dict = field(default_factory=dict)  # {volume: (user, bytes)}
    seconds: dict = field(default_factory=dict)  # {"servers" | "homes": how long the last round took}


class UsageCollector:
    """A prometheus_client collector of the figures, and the task that gathers them."""

    def __init__(self, names, engine=None, interval=INTERVAL, homes_interval=HOMES_INTERVAL, concurrency=CONCURRENCY):
        """engine: a docker APIClient (made in the first round when None)."""
        self.names, self.engine = names, engine
        self.interval, self.homes_interval = interval, homes_interval
        self.figures = Figures()  # replaced whole by each round: a scrape never sees half of one
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="hubstack-usage")
        self.concurrency = concurrency
        self.homes_measured = None  # time.monotonic() of the last measure of the home volumes
        self.homes_task = None
        self.task = None
        self.failing = False  # said once in the log until a round works again

    # -- what a scrape reads ---------------------------------------------------------
    def describe(self):
        return self.families(Figures())

    def collect(self):
        return self.families(self.figures)

    @staticmethod
    def families(figures):
        cpu = CounterMetricFamily(CPU, "CPU time used by a user server's processes", labels=["user", "server"])
        memory = GaugeMetricFamily(
            MEMORY,
            "Memory of a user server held to its limit (usage less inactive file cache)",
            labels=["user", "server"],
        )
        for s in figures.servers:
            cpu.add_metric([s.user, s.server], s.cpu_seconds)
            memory.add_metric([s.user, s.server], s.memory_bytes)
        home = GaugeMetricFamily(HOME, "Disk space used by a user's home volume, running or not", labels=["user"])
        for user, size in sorted(figures.homes.values()):
            home.add_metric([user], size)
        gather = GaugeMetricFamily(GATHER, "How long the last round of the usage figures took", labels=["what"])
        for what, seconds in sorted(figures.seconds.items()):
            gather.add_metric([what], seconds)
        return [cpu, memory, home, gather]

    # -- gathering -------------------------------------------------------------------
    def start(self, started=None):
        """Gather in the hub's event loop from now on, once `started` (an awaitable) is done."""
        if self.task is None:
            self.task = asyncio.ensure_future(self.forever(started))

    async def forever(self, started=None):
        if started is not None:
            await started  # not while the hub itself starts
        while True:
            try:
                await self.gather()
                if self.failing:
                    log.info("hubstack: the usage figures of the user servers are gathered again")
                self.failing = False
            except Exception:  # noqa: BLE001 - the engine away, a surprise: the next round tries again
                if not self.failing:
                    log.exception("hubstack: the usage figures of the user servers could not be gathered")
                self.failing = True
                self.figures = Figures(homes=self.figures.homes, seconds=self.figures.seconds)  # no stale servers
            await asyncio.sleep(self.interval)

    async def in_thread(self, function, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: function(*args, **kwargs))

    async def gather(self):
        """One round: every running user server's stats, and the homes when due."""
        if self.engine is None:
            self.engine = await self.in_thread(make_engine, self.concurrency)
        began = time.monotonic()
        containers = await self.in_thread(self.engine.containers, filters=self.names.label_filter(Role.USER_SERVER))
        stats = await asyncio.gather(*(self.stats_of(c) for c in containers))
        servers = sorted(filter(None, stats), key=lambda s: (s.user, s.server))
        seconds = {**self.figures.seconds, "servers": time.monotonic() - began}
        self.figures = Figures(servers, self.figures.homes, seconds)
        if self.homes_due(containers) and (self.homes_task is None or self.homes_task.done()):
            self.homes_task = asyncio.ensure_future(self.measure_homes())
        return self.figures

    async def stats_of(self, container):
        try:
            stats = await self.in_thread(self.engine.stats, container["Id"], stream=False, one_shot=True)
        except Exception:  # noqa: BLE001 - gone between the list and the stats
            return None
        return server_figures(container, stats)

    def homes_due(self, containers, now=None):
        now = time.monotonic() if now is None else now
        if self.homes_measured is None:
            return True
        since = now - self.homes_measured
        unmeasured = {home_volume(c) for c in containers} - {None} - set(self.figures.homes)
        return since >= self.homes_interval or (unmeasured and since >= NEW_HOME_WAIT)

    async def measure_homes(self):
        began = self.homes_measured = time.monotonic()
        try:
            homes = await self.in_thread(home_sizes, self.engine, self.names)
        except Exception:  # noqa: BLE001 - the next measure tries again; the sizes known stay
            log.exception("hubstack: the sizes of the home volumes could not be measured")
            return
        seconds = {**self.figures.seconds, "homes": time.monotonic() - began}
        self.figures = Figures(self.figures.servers, homes, seconds)


def make_engine(concurrency):
    import docker

    # Its own connections (DockerSpawner has its client); du of many homes may take minutes.
    return docker.from_env(max_pool_size=concurrency, timeout=600).api
