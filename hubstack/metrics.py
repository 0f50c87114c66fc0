"""`hubstack metrics`: the figures of the hub's /hub/metrics for an operator, and the scrape
job that points a Prometheus at it (README.md, 'Metrics')."""

import json
from urllib.parse import urlsplit

from .common.contract import HUB_API_PORT, HUB_SERVICE, METRICS_PATH

SCRAPE_INTERVAL = "15s"  # the hub gathers the user servers' figures every 15 s (hubstack_hub.usage)


def scrape_config(settings, token_file, on_network=False):
    """A prometheus.yml scrape job (YAML text) for this instance's hub.

    on_network: for a Prometheus container on the instance's network, which reaches the hub
    itself by its service name; else the hub's public address (HTTPS when it serves it)."""
    if on_network:
        scheme, target = "http", f"{HUB_SERVICE}:{HUB_API_PORT}"
    else:
        url = urlsplit(settings.public_url)
        scheme = url.scheme
        target = url.netloc if url.port else f"{url.netloc}:{443 if scheme == 'https' else 80}"
    lines = [
        f"# hubstack {settings.name}: JupyterHub's metrics, each user server's CPU and memory, each home's size.",
        "# The token opens /hub/metrics and nothing else; let only Prometheus read its file (mode 600).",
        *(
            []
            if on_network
            else [f"# (A Prometheus container on the network {settings.names.network}: add --on-network.)"]
        ),
        "scrape_configs:",
        f"  - job_name: {json.dumps(f'hubstack-{settings.name}')}",
        f"    metrics_path: {METRICS_PATH}",
        f"    scheme: {scheme}",
        f"    scrape_interval: {SCRAPE_INTERVAL}",
        "    authorization:",
        f"      credentials_file: {json.dumps(str(token_file))}",
        "    static_configs:",
        f"      - targets: [{json.dumps(target)}]",
        "        labels:  # the label jupyterhub/grafana-dashboards' activity board tells hubs apart by",
        f"          namespace: {json.dumps(settings.name)}",
    ]
    return "\n".join(lines) + "\n"


def size(value):
    """Bytes for people: 812.0 KiB, 101.3 MiB, 2.4 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def rows(report):
    """(user, server, CPU seconds, memory, home) for the table: every running server, then every
    home without one; a user's home shows once."""
    homes = {h["user"]: h["bytes"] for h in report["homes"]}
    table, shown = [], set()
    for s in report["servers"]:
        home = homes.get(s["user"]) if s["user"] not in shown else None
        shown.add(s["user"])
        table.append(
            (
                s["user"],
                s["server"],
                f"{s.get('cpu_seconds', 0):.1f}",
                size(s.get("memory_bytes", 0)),
                "" if home is None else size(home),
            )
        )
    for user in sorted(set(homes) - shown):
        table.append((user, "(stopped)", "", "", size(homes[user])))
    return table


def lines(name, report):
    """What `hubstack metrics` prints."""
    active = report["active_users"]
    periods = ", ".join(f"{active[p]:.0f} in {p}" for p in ("24h", "7d", "30d") if p in active)
    said = [
        f"hub {name}: {report['running_servers']:.0f} server(s) running, {report['total_users']:.0f} user(s)"
        + (f"; active: {periods}" if periods else "")
    ]
    if report["spawns"]:
        said.append(f"spawns: {report['spawns']:.0f} succeeded, {report['spawn_mean_seconds']:.1f} s on average")
    table = rows(report)
    if table:
        said.append(f"{'user':<36} {'server':<12} {'CPU s':>9} {'memory':>11} {'home':>11}")
        said += [f"{u:<36} {s:<12} {c:>9} {m:>11} {h:>11}" for u, s, c, m, h in table]
    took = report["gather_seconds"]
    if "servers" in took:
        said.append(
            f"figures of {len(report['servers'])} server(s) gathered in {took['servers']:.2f} s"
            + (f", homes measured in {took['homes']:.2f} s" if "homes" in took else ", homes not measured yet")
        )
    return said
