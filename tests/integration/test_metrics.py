"""Metrics end to end: a real Prometheus (Debian's package) on the stack's network scrapes the
hub with the metrics token, as `hubstack metrics --scrape-config --on-network` tells it to,
and answers queries about a researcher's server; the token opens nothing but /hub/metrics;
`hubstack metrics` prints the same figures; a replaced token ends the old one.
"""

import json
import time

import pytest
import requests

from helpers import NAME, REPO, run_hubstack, wait_for
from hubclient import BrowserUser
from hubstack.build import Builder
from hubstack.common.contract import HUB_API_PORT, HUB_SERVICE, METRICS_PATH, METRICS_TOKEN, Role
from hubstack.images import Image

PROMETHEUS = Image("prometheus", "tests/prometheus")
TOKEN_IN_PROMETHEUS = "/etc/prometheus/metrics_token"
RESEARCHER = "metrics-mia"
ALLOCATED = 300 * 2**20  # held by the researcher's kernel while Prometheus looks
BUSY_SECONDS = 3  # of CPU the kernel burns


@pytest.fixture(scope="module")
def token_file(settings):
    return settings.folders(REPO)[0] / METRICS_TOKEN


@pytest.fixture(scope="module")
def prometheus(hub, docker_client, settings, token_file, tmp_path_factory):
    """Prometheus on the stack's network with the scrape job the CLI prints; its API on a free loopback port."""
    Builder(docker_client, settings, REPO, echo=lambda *_: None).run(images=(PROMETHEUS,))
    job = run_hubstack("metrics", "--scrape-config", "--on-network", "--token-file", TOKEN_IN_PROMETHEUS).stdout
    config = tmp_path_factory.mktemp("prometheus") / "prometheus.yml"
    config.write_text(job)
    container = docker_client.containers.create(
        settings.names.image(PROMETHEUS.role),
        [f"--config.file={config}"],
        name=f"{NAME}-test-prometheus",  # an interrupted run's is gone with the instance's (clean_slate)
        labels=settings.names.labels(Role.TEST_SERVICE),
        detach=True,
        volumes={
            str(config): {"bind": str(config), "mode": "ro"},
            str(token_file): {"bind": TOKEN_IN_PROMETHEUS, "mode": "ro"},
        },
        ports={"9090/tcp": ("127.0.0.1", None)},  # any free port
    )
    docker_client.networks.get(settings.names.network).connect(container, aliases=["prometheus"])
    container.start()
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["9090/tcp"][0]["HostPort"]
    api = f"http://127.0.0.1:{port}/api/v1"
    wait_for(lambda: answers(f"{api}/status/buildinfo"), 60, "Prometheus to answer")
    yield api
    container.remove(force=True)


def answers(url):
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.RequestException:
        return False


def query(api, promql):
    """[(labels, value)] of an instant query."""
    response = requests.get(f"{api}/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    return [(r["metric"], float(r["value"][1])) for r in response.json()["data"]["result"]]


def first(api, promql):
    found = query(api, promql)
    return found[0][1] if found else None


@pytest.fixture(scope="module")
def busy_researcher(hub):
    """A researcher whose kernel holds ALLOCATED bytes after burning BUSY_SECONDS of CPU."""
    user = BrowserUser.with_server(hub, RESEARCHER)
    kernel = user.start_kernel()
    out, error = user.run(
        kernel["id"],
        "import time\n"
        f"end = time.process_time() + {BUSY_SECONDS}\n"
        "while time.process_time() < end: pass\n"
        f"held = b'x' * {ALLOCATED}\n"
        "print(len(held))",
    )
    assert error is None and out.strip() == str(ALLOCATED)
    yield user
    user.stop_server()


def test_prometheus_scrapes_the_hub_and_answers_about_a_researchers_server(prometheus, busy_researcher):
    started = time.monotonic()
    wait_for(lambda: (first(prometheus, "jupyterhub_running_servers") or 0) >= 1, 120, "running servers in Prometheus")
    (target,) = requests.get(f"{prometheus}/targets", timeout=10).json()["data"]["activeTargets"]
    assert target["health"] == "up" and target["scrapeUrl"] == f"http://{HUB_SERVICE}:{HUB_API_PORT}{METRICS_PATH}"
    user = f'user="{RESEARCHER}"'
    memory = f"hubstack_user_server_memory_working_set_bytes{{{user}}}"
    wait_for(lambda: (first(prometheus, memory) or 0) >= ALLOCATED, 120, f"{memory} >= {ALLOCATED}")
    print(f"Prometheus had the running servers and the researcher's memory {time.monotonic() - started:.1f} s in")
    ((labels, _),) = query(prometheus, memory)
    assert labels.get("server", "") == "" and labels["job"] == f"hubstack-{NAME}"  # the default server: no name
    assert first(prometheus, f"hubstack_user_server_cpu_seconds_total{{{user}}}") >= BUSY_SECONDS
    home = f"hubstack_user_home_bytes{{{user}}}"
    wait_for(lambda: (first(prometheus, home) or 0) > 0, 120, f"{home} > 0 (demo.ipynb is in every home)")
    print(f"... and the size of its home {time.monotonic() - started:.1f} s in")
    assert first(prometheus, 'hubstack_usage_gather_seconds{what="servers"}') is not None


def with_token(hub, token, method, path):
    return requests.request(method, f"{hub}{path}", headers={"Authorization": f"token {token}"}, timeout=10)


def test_the_metrics_token_opens_nothing_but_the_metrics(hub, token_file, busy_researcher):
    token = token_file.read_text().strip()
    assert with_token(hub, token, "GET", METRICS_PATH).status_code == 200
    assert requests.get(f"{hub}{METRICS_PATH}", timeout=10).status_code == 403  # authenticate_prometheus stays on
    assert with_token(hub, "0" * 64, "GET", METRICS_PATH).status_code == 403
    for method, path in (
        ("GET", "/hub/api/users"),
        ("GET", f"/hub/api/users/{RESEARCHER}"),
        ("POST", f"/hub/api/users/{RESEARCHER}/tokens"),
        ("DELETE", f"/hub/api/users/{RESEARCHER}/server"),
        ("GET", "/hub/api/services"),
    ):
        assert with_token(hub, token, method, path).status_code == 403, (method, path)
    server = busy_researcher.server_url.split("://", 1)[1].split("/", 1)[1]
    assert with_token(hub, token, "GET", f"/{server}api/contents").status_code == 403  # nor a server


def test_hubstack_metrics_prints_the_figures(busy_researcher):
    report = json.loads(run_hubstack("metrics", "--json").stdout)
    assert report["running_servers"] >= 1 and report["total_users"] >= 1
    (row,) = [s for s in report["servers"] if s["user"] == RESEARCHER]
    assert row["memory_bytes"] >= ALLOCATED and row["cpu_seconds"] >= BUSY_SECONDS
    table = run_hubstack("metrics").stdout
    assert table.startswith(f"hub {NAME}: ") and f"\n{RESEARCHER} " in table, table


def test_a_replaced_token_ends_the_old_one(hub, token_file, tmp_path):
    """Another secrets folder with a new token: the hub started on it refuses the old token; back again,
    the new one is refused (JupyterHub itself would keep every token it was ever given)."""
    old = token_file.read_text().strip()
    other = tmp_path / "secrets"
    run_hubstack("secrets", "init", env={"HUBSTACK_SECRETS_DIR": str(other)})
    new = (other / METRICS_TOKEN).read_text().strip()
    try:
        run_hubstack("up", "--dev", env={"HUBSTACK_SECRETS_DIR": str(other)}, timeout=600)
        wait_for(lambda: reads(hub, new) == 200, 60, "the new token to work")
        wait_for(lambda: reads(hub, old) == 403, 10, "the old token to be revoked once the hub has started")
    finally:
        run_hubstack("up", "--dev", timeout=600)
    wait_for(lambda: reads(hub, old) == 200, 60, "the old token to work again")
    wait_for(lambda: reads(hub, new) == 403, 10, "the new token to be revoked")


def reads(hub, token):
    return with_token(hub, token, "GET", METRICS_PATH).status_code
