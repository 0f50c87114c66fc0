"""Metrics: each user server's usage gathered off the scrape path, the figures `hubstack metrics`
prints from a /hub/metrics text, the scrape job, and a service that may read metrics alone."""

import asyncio

import pytest
import yaml
from docker.errors import NotFound
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hubstack import metrics as cli_metrics
from hubstack.common.contract import LABEL_SERVER, USER_HOME, Names, Role
from hubstack.common.parse import SettingsError
from hubstack.common.settings import load
from hubstack.errors import HubstackError
from hubstack.stack import Stack
from hubstack_hub import metrics, usage

NAMES = Names("hubci")
GiB = 2**30


def container(cid, user, server="", home=None):
    return {
        "Id": cid,
        "Labels": {**NAMES.labels(Role.USER_SERVER, user=user), LABEL_SERVER: server},
        "Mounts": [{"Type": "volume", "Name": home or f"hubci-home-{cid}", "Destination": USER_HOME}],
    }


def stats(cpu_ns, usage_bytes, inactive, v1=True):
    """A one-shot stats answer of the engine (the fields read, as Docker 20.10 sends them)."""
    key = "total_inactive_file" if v1 else "inactive_file"
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}, "online_cpus": 2},
        "memory_stats": {"usage": usage_bytes, "limit": 2 * GiB, "stats": {key: inactive, "cache": inactive}},
        "pids_stats": {"current": 9},
    }


def volume(name, user, instance="hubci", role=Role.HOME):
    return {"Name": name, "Labels": Names(instance).labels(role, user=user), "Driver": "local"}


def samples(text):
    """{(name, user, server): value} of a metrics text."""
    return {
        (s.name, s.labels.get("user"), s.labels.get("server")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Engine:
    """The few calls of docker's APIClient the collector makes, recorded; du's answers from `sizes`."""

    def __init__(self, listed, answers, volumes=(), sizes=None):
        self.listed, self.answers, self.all_volumes, self.sizes = listed, answers, list(volumes), sizes or {}
        self.calls, self.made, self.removed = [], [], []

    def containers(self, filters):
        self.calls.append(("containers", filters))
        return self.listed

    def stats(self, cid, stream, one_shot):
        self.calls.append(("stats", cid, stream, one_shot))
        if cid not in self.answers:
            raise NotFound("gone")
        return self.answers[cid]

    def volumes(self, filters):
        self.calls.append(("volumes", filters))
        wanted = dict(item.split("=", 1) for item in filters["label"])
        return {"Volumes": [v for v in self.all_volumes if wanted.items() <= v["Labels"].items()]}

    # -- the measuring container
    def create_host_config(self, **config):
        return config

    def create_container(self, image, command, **kwargs):
        self.calls.append(("create",))
        self.made.append({"image": image, "command": command, **kwargs})
        return {"Id": f"du{len(self.made)}"}

    def start(self, container):
        pass

    def wait(self, container, timeout):
        return {"StatusCode": 1}  # as when du met a folder it could not read

    def logs(self, container, stdout, stderr):
        assert stdout and not stderr
        paths = self.made[int(container["Id"][2:]) - 1]["command"][3:]
        return "".join(f"{self.sizes[p.rsplit('/', 1)[1]]}\t{p}\n" for p in paths).encode()

    def remove_container(self, container, force):
        self.removed.append(container["Id"])


@pytest.mark.parametrize("v1", [True, False])
def test_working_set_is_usage_less_inactive_file_cache(v1):
    assert usage.working_set(stats(0, 300_000_000, 100_000_000, v1)["memory_stats"]) == 200_000_000
    assert usage.working_set({"usage": 5, "stats": {"total_inactive_file": 9}}) == 0


def test_a_round_gathers_every_server_and_then_the_homes():
    engine = Engine(
        [container("a1", "alice"), container("b1", "jane.doe+x@example.org", "gpu"), container("c1", "carol")],
        {"a1": stats(2_500_000_000, 150 * 2**20, 50 * 2**20), "b1": stats(10**9, 90 * 2**20, 0)},  # c1 stopped
        [
            volume("hubci-home-a1", "alice"),
            volume("hubci-home-b1", "jane.doe+x@example.org"),
            volume("hubci-home-d1", "dave"),  # no server running: measured all the same
            volume("hubci2-home-a1", "alice", instance="hubci2"),  # another instance's
            volume("hubci-env-123", "", role=Role.ENVIRONMENT),
        ],
        {"hubci-home-a1": 4096, "hubci-home-b1": 3 * GiB, "hubci-home-d1": 1000},
    )
    collector = usage.UsageCollector(NAMES, engine=engine)

    async def round_and_homes():
        await collector.gather()
        await collector.homes_task

    asyncio.run(round_and_homes())
    assert engine.calls[0] == ("containers", NAMES.label_filter(Role.USER_SERVER))
    assert {c[1:] for c in engine.calls if c[0] == "stats"} == {(c, False, True) for c in ("a1", "b1", "c1")}
    assert collector.figures.servers == [
        usage.Server("alice", "", 2.5, 100 * 2**20),
        usage.Server("jane.doe+x@example.org", "gpu", 1.0, 90 * 2**20),
    ]
    assert collector.figures.homes == {
        "hubci-home-a1": ("alice", 4096),
        "hubci-home-b1": ("jane.doe+x@example.org", 3 * GiB),
        "hubci-home-d1": ("dave", 1000),
    }
    assert set(collector.figures.seconds) == {"servers", "homes"}
    (measurer,) = engine.made
    assert measurer["image"] == "hubci-hub" and measurer["labels"] == NAMES.labels(Role.USAGE)
    assert measurer["command"][:3] == ["du", "--summarize", "--block-size=1"]
    config = measurer["host_config"]
    assert config["binds"] == {
        v: {"bind": f"/homes/{v}", "mode": "ro"} for v in ("hubci-home-a1", "hubci-home-b1", "hubci-home-d1")
    }
    assert measurer["network_disabled"] and config["network_mode"] == "none" and config["read_only"]
    assert config["cap_drop"] == ["ALL"] and config["cap_add"] == ["DAC_READ_SEARCH"]
    assert engine.removed == ["du1"]

    # A scrape reads the last round and never asks the engine.
    before = len(engine.calls)
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert len(engine.calls) == before
    found = samples(text)
    assert found[("hubstack_user_server_cpu_seconds_total", "alice", "")] == 2.5
    assert found[("hubstack_user_server_memory_working_set_bytes", "jane.doe+x@example.org", "gpu")] == 90 * 2**20
    assert found[("hubstack_user_home_bytes", "dave", None)] == 1000
    assert "hubci2" not in text and 'user="carol"' not in text


def test_many_homes_are_measured_in_batches(monkeypatch):
    monkeypatch.setattr(usage, "HOMES_AT_ONCE", 2)
    homes = [volume(f"hubci-home-u{i}", f"u{i}") for i in range(5)]
    engine = Engine([], {}, homes, {v["Name"]: 10 + i for i, v in enumerate(homes)})
    assert usage.home_sizes(engine, NAMES) == {f"hubci-home-u{i}": (f"u{i}", 10 + i) for i in range(5)}
    assert [len(m["host_config"]["binds"]) for m in engine.made] == [2, 2, 1]
    assert engine.removed == ["du1", "du2", "du3"]


def test_du_lines_are_sizes_and_its_complaints_are_not():
    said = "4096\t/homes/hubci-home-a1\ndu: cannot read directory '/homes/x/y': Permission denied\n12\t/etc\n"
    assert usage.parse_du(said) == {"hubci-home-a1": 4096}


def test_homes_are_measured_rarely_and_soon_after_a_new_one_runs():
    collector = usage.UsageCollector(NAMES, engine=Engine([], {}), homes_interval=300)
    known = container("a1", "alice")
    assert collector.homes_due([known], now=0)  # never measured
    collector.homes_measured = 100.0
    collector.figures.homes = {"hubci-home-a1": ("alice", 1)}
    assert not collector.homes_due([known], now=399)
    assert collector.homes_due([known], now=400)
    new = container("b1", "bob")
    assert not collector.homes_due([known, new], now=100 + usage.NEW_HOME_WAIT - 1)
    assert collector.homes_due([known, new], now=100 + usage.NEW_HOME_WAIT)


def test_a_failed_round_drops_the_servers_keeps_the_homes_and_says_so_once(caplog):
    class Away(Engine):
        def containers(self, filters):
            raise ConnectionError("engine away")

    collector = usage.UsageCollector(NAMES, engine=Away([], {}, []), interval=0)
    collector.figures = usage.Figures([usage.Server("alice", "", 1.0, 1)], {"v": ("alice", 5)}, {})

    async def three_rounds():
        task = asyncio.ensure_future(collector.forever())
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(three_rounds())
    assert collector.figures.servers == [] and collector.figures.homes == {"v": ("alice", 5)}
    assert [r.message for r in caplog.records].count(
        "hubstack: the usage figures of the user servers could not be gathered"
    ) == 1


JUPYTERHUB_TEXT = """\
# HELP jupyterhub_running_servers The number of user servers currently running
# TYPE jupyterhub_running_servers gauge
jupyterhub_running_servers 2.0
# HELP jupyterhub_total_users Total number of users
# TYPE jupyterhub_total_users gauge
jupyterhub_total_users 3.0
# HELP jupyterhub_active_users Number of users who were active in the given time period
# TYPE jupyterhub_active_users gauge
jupyterhub_active_users{period="24h"} 2.0
jupyterhub_active_users{period="7d"} 3.0
jupyterhub_active_users{period="30d"} 3.0
# HELP jupyterhub_server_spawn_duration_seconds Time taken for server spawning operation
# TYPE jupyterhub_server_spawn_duration_seconds histogram
jupyterhub_server_spawn_duration_seconds_bucket{le="+Inf",reason="",status="success"} 4.0
jupyterhub_server_spawn_duration_seconds_count{reason="",status="success"} 4.0
jupyterhub_server_spawn_duration_seconds_sum{reason="",status="success"} 11.0
jupyterhub_server_spawn_duration_seconds_count{reason="",status="failure"} 1.0
jupyterhub_server_spawn_duration_seconds_sum{reason="",status="failure"} 60.0
"""


def test_the_operators_figures_from_a_metrics_text():
    collector = usage.UsageCollector(NAMES, engine=Engine([], {}))
    collector.figures = usage.Figures(
        [usage.Server("alice", "", 2.5, 100 * 2**20), usage.Server("alice", "gpu", 7.25, 2 * GiB)],
        {"hubci-home-alice": ("alice", 3 * 2**20), "hubci-home-dave": ("dave", 812 * 2**10)},
        {"servers": 0.04, "homes": 0.5},
    )
    registry = CollectorRegistry()
    registry.register(collector)
    report = metrics.summary(JUPYTERHUB_TEXT + generate_latest(registry).decode())
    assert (report["running_servers"], report["total_users"], report["spawns"]) == (2, 3, 4)
    assert report["spawn_mean_seconds"] == 2.75  # successful spawns only
    assert report["active_users"] == {"24h": 2, "7d": 3, "30d": 3}
    assert report["servers"] == [
        {"user": "alice", "server": "", "cpu_seconds": 2.5, "memory_bytes": 100 * 2**20},
        {"user": "alice", "server": "gpu", "cpu_seconds": 7.25, "memory_bytes": 2 * GiB},
    ]
    said = cli_metrics.lines("hubci", report)
    assert said[0] == "hub hubci: 2 server(s) running, 3 user(s); active: 2 in 24h, 3 in 7d, 3 in 30d"
    assert said[1] == "spawns: 4 succeeded, 2.8 s on average"
    table = [line.split() for line in said[3:6]]
    assert table == [
        ["alice", "2.5", "100.0", "MiB", "3.0", "MiB"],  # the default server has no name
        ["alice", "gpu", "7.2", "2.0", "GiB"],  # the home shows once per user
        ["dave", "(stopped)", "812.0", "KiB"],
    ]
    assert said[-1] == "figures of 2 server(s) gathered in 0.04 s, homes measured in 0.50 s"


def test_the_service_may_read_metrics_and_nothing_else():
    assert metrics.ROLE["scopes"] == ["read:metrics"] and metrics.ROLE["services"] == [metrics.SERVICE]
    assert metrics.service("t" * 64) == {"name": metrics.SERVICE, "api_token": "t" * 64}


@pytest.mark.parametrize(
    "environ,on_network,scheme,target",
    [
        ({"HUBSTACK_NAME": "lab", "HUBSTACK_PORT": "8100"}, False, "http", "127.0.0.1:8100"),
        ({"HUBSTACK_NAME": "lab", "HUBSTACK_PORT": "8100"}, True, "http", "hub:8081"),
        (
            {"HUBSTACK_NAME": "lab", "HUBSTACK_HTTPS": "acme", "HUBSTACK_DOMAIN": "hub.example.org"},
            False,
            "https",
            "hub.example.org:443",
        ),
    ],
)
def test_the_scrape_job_is_prometheus_yaml_for_this_hub(environ, on_network, scheme, target):
    text = cli_metrics.scrape_config(load(environ=environ), "/etc/prometheus/hub token", on_network=on_network)
    (job,) = yaml.safe_load(text)["scrape_configs"]
    assert job == {
        "job_name": "hubstack-lab",
        "metrics_path": "/hub/metrics",
        "scheme": scheme,
        "scrape_interval": "15s",
        "authorization": {"credentials_file": "/etc/prometheus/hub token"},
        "static_configs": [{"targets": [target], "labels": {"namespace": "lab"}}],
    }
    assert all(line.startswith(("#", "scrape_configs:", " ")) for line in text.splitlines())


class Hub:
    """The hub container as Stack.metrics sees it: `python3 -m hubstack_hub.metrics report` says this."""

    status = "running"

    def __init__(self, said):
        self.said, self.ran = said, []

    def exec_run(self, argv):
        self.ran.append(argv)
        return type("Result", (), {"exit_code": 0, "output": self.said.encode()})()


def stack_saying(said):
    hub = Hub(said)
    client = type("Client", (), {"containers": type("Containers", (), {"get": lambda self, name: hub})()})()
    return Stack("/nowhere", load(environ={"HUBSTACK_NAME": "lab"}), client=client), hub


def test_hubstack_metrics_reads_the_report_in_the_hub_and_says_what_to_fix():
    stack, hub = stack_saying('{"running_servers": 1}\n')
    assert stack.metrics() == {"running_servers": 1}
    assert hub.ran == [["python3", "-m", "hubstack_hub.metrics", "report"]]
    stack, _ = stack_saying('{"error": "no metrics token: run `hubstack secrets init`", "fix": "secrets"}')
    with pytest.raises(SettingsError, match="^no metrics token: run `hubstack secrets init`$"):
        stack.metrics()
    stack, _ = stack_saying('{"error": "the hub does not know the metrics token", "fix": "restart"}')
    with pytest.raises(HubstackError, match="does not know the metrics token: restart the hub .*`hubstack reset`"):
        stack.metrics()
    stack, _ = stack_saying("Traceback (most recent call last): ...")
    with pytest.raises(HubstackError, match="could not be read: Traceback"):
        stack.metrics()
