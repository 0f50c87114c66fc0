"""The hub's metrics service: Prometheus reads /hub/metrics with a token that can do nothing else.

The token is the file metrics_token of the secrets folder (`hubstack secrets init`
makes it). The hub knows it as the token of the service `prometheus`, whose role
has the one scope read:metrics; JupyterHub's authenticate_prometheus stays on, so
/hub/metrics answers 403 to anyone without that scope. JupyterHub keeps every
token it was ever configured with, so when the file is replaced the old tokens
of the service are revoked once the hub has started.

`python3 -m hubstack_hub.metrics report`, which `hubstack metrics` runs in the
hub, reads /hub/metrics with the token as Prometheus does and prints the main
figures as one JSON line.
"""

import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request

from . import usage

SERVICE = "prometheus"
ROLE = {
    "name": "hubstack-metrics",
    "description": "Reads the hub's Prometheus metrics (/hub/metrics), nothing else",
    "scopes": ["read:metrics"],
    "services": [SERVICE],
}


TASKS = set()  # asyncio keeps only weak references to tasks


def service(token):
    """The entry of c.JupyterHub.services: a service outside the hub, known by its token."""
    return {"name": SERVICE, "api_token": token}


def start(names, token):
    """Each user server's usage in /hub/metrics from now on; ([service], [role]) of the token (none without)."""
    from jupyterhub.app import JupyterHub
    from prometheus_client import REGISTRY

    entries = ([service(token)], [ROLE]) if token else ([], [])
    # JupyterHub 6's own "the hub has started", made in JupyterHub.initialize; not there when the
    # configuration is read by another command (jupyterhub upgrade-db), which gathers nothing.
    started = getattr(JupyterHub.instance(), "_start_future", None)
    if started is None:
        return entries
    collector = usage.UsageCollector(names)
    REGISTRY.register(collector)
    collector.start(started)
    if token:
        TASKS.add(asyncio.ensure_future(revoke_old_tokens(token, started)))
    return entries


async def revoke_old_tokens(token, started):
    """Once the hub has started (`started`), delete every token of the service but `token`."""
    from jupyterhub import orm
    from jupyterhub.app import JupyterHub

    await started
    db = JupyterHub.instance().db
    found = orm.Service.find(db, SERVICE)
    current = orm.APIToken.find(db, token)
    old = [t for t in (found.api_tokens if found else []) if current is None or t.id != current.id]
    for t in old:
        db.delete(t)
    if old:
        db.commit()
        logging.getLogger("JupyterHub").info("hubstack: revoked %d old token(s) of the %s service", len(old), SERVICE)


# -- the figures an operator looks at first ------------------------------------------------
def summary(text):
    """The main figures of a /hub/metrics text: servers, users, spawns, and each researcher's usage."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def values(name, **labels):
        return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def total(name, **labels):
        return sum(s.value for s in values(name, **labels))

    servers = {}
    for name, key in ((f"{usage.CPU}_total", "cpu_seconds"), (usage.MEMORY, "memory_bytes")):
        for s in values(name):
            user, server = s.labels.get("user", ""), s.labels.get("server", "")
            servers.setdefault((user, server), {"user": user, "server": server})[key] = s.value
    spawns = total("jupyterhub_server_spawn_duration_seconds_count", status="success")
    return {
        "running_servers": total("jupyterhub_running_servers"),
        "total_users": total("jupyterhub_total_users"),
        "active_users": {s.labels["period"]: s.value for s in values("jupyterhub_active_users")},
        "spawns": spawns,
        "spawn_mean_seconds": total("jupyterhub_server_spawn_duration_seconds_sum", status="success") / spawns
        if spawns
        else None,
        "servers": [servers[key] for key in sorted(servers)],
        "homes": sorted(
            ({"user": s.labels["user"], "bytes": s.value} for s in values(usage.HOME)), key=lambda h: h["user"]
        ),
        "gather_seconds": {s.labels["what"]: s.value for s in values(usage.GATHER)},
    }


def report():
    """{figures} or {"error": ..., "fix": "secrets" | "restart"}, read from the hub's own port."""
    from hubstack.common.contract import HUB_API_PORT, METRICS_PATH, METRICS_TOKEN, SECRETS_MOUNT
    from hubstack.common.login import dev_metrics_token
    from hubstack.common.parse import SettingsError
    from hubstack.common.settings import load

    try:
        shown = load().shown_secrets_dir
        token = dev_metrics_token(SECRETS_MOUNT, shown)
    except SettingsError as err:
        return {"error": str(err), "fix": "secrets"}
    if token is None:
        return {
            "error": f"no metrics token: run `hubstack secrets init` (it makes {shown}/{METRICS_TOKEN})",
            "fix": "secrets",
        }
    request = urllib.request.Request(
        f"http://127.0.0.1:{HUB_API_PORT}{METRICS_PATH}", headers={"Authorization": f"token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return summary(response.read().decode())
    except urllib.error.HTTPError as err:
        if err.code == 403:
            return {"error": "the hub does not know the metrics token in the secrets folder yet", "fix": "restart"}
        return {"error": f"/hub/metrics answered HTTP {err.code}", "fix": "restart"}
    except OSError as err:
        return {"error": f"/hub/metrics did not answer: {err}", "fix": "restart"}


if __name__ == "__main__":
    if sys.argv[1:] != ["report"]:
        print("usage: python3 -m hubstack_hub.metrics report", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(report()))
