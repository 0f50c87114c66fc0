"""4. Footprint: memory of the hub with 0/50/100 servers, of a user server, disk per user, sizes.

Servers are started as researchers start them (log-in form, /hub/spawn,
OAuth into the server), a few at a time. Memory is the container's working
set (usage less reclaimable page cache, as `docker stats` shows it), read
after the servers have been idle for SETTLE seconds. The baseline for a user
server is a bare `docker run` of the same image, idle as long.
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from . import report
from .probes import container_mib, processes_mib, volume_mib
from .researcher import BareResearcher, Researcher

SETTLE = 20  # seconds idle before memory is read
READINGS = 5


def steady_mib(client, name):
    """Median of a few readings a second apart."""
    values = []
    for _ in range(READINGS):
        value = container_mib(client, name)
        if value is not None:
            values.append(value)
        time.sleep(1)
    return statistics.median(values) if values else None


def start_servers(stack, users, workers=6):
    def start(user):
        user.login()
        user.ask_for_server()
        user.open_server()
        return user

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(start, users))


def stop_servers(users, workers=10):
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda u: u.leave(), users))


def hub_reading(stack, servers, settle):
    time.sleep(settle)
    mib = steady_mib(stack.client, stack.hub)
    per_server = [container_mib(stack.client, stack.server_container(u.name)) for u in servers]
    per_server = [m for m in per_server if m is not None]
    return {
        "servers": len(servers),
        "hub_mib": mib,
        "processes_mib": processes_mib(stack.client, stack.hub),
        "user_server_mib": report.summary(per_server),
    }


def disk_per_user(stack, users):
    """A user's own disk: their home volume plus their container's writable layer (median of a few)."""
    sample = users[:5]
    home = [volume_mib(stack.client, stack.names.image("notebook"), stack.home_volume(u.name)) for u in sample]
    # The engine sizes a container's writable layer only when asked, one container at a time
    # (`docker system df` sizes everything and takes minutes with 100 servers).
    layer = [
        c.get("SizeRw", 0) / 2**20
        for u in sample
        for c in stack.client.api.containers(size=True, filters={"name": f"^{stack.server_container(u.name)}$"})
    ]
    return {
        "home_volume_mib": statistics.median(home),
        "container_layer_mib": statistics.median(layer),
        "total_mib": statistics.median(home) + statistics.median(layer),
    }


def run(stack, sizes=(50, 100), echo=print, settle=SETTLE):
    client = stack.client
    time.sleep(settle)
    readings = [
        {"servers": 0, "hub_mib": steady_mib(client, stack.hub), "processes_mib": processes_mib(client, stack.hub)}
    ]
    echo(f"  hub with 0 servers: {report.fmt(readings[0]['hub_mib'], 0)} MiB")

    bare = BareResearcher(stack, stack.user_name("footbare", 0))
    bare.start()
    time.sleep(settle)
    bare_idle = steady_mib(client, bare.container.name)
    bare.kernel_id = bare.start_kernel()["id"]
    bare.first_result()
    time.sleep(5)
    bare_kernel = steady_mib(client, bare.container.name)
    bare.leave()

    servers = []
    try:
        for size in sizes:
            new = [Researcher(stack.url, stack.user_name("foot", i)) for i in range(len(servers), size)]
            servers += start_servers(stack, new)
            readings.append(hub_reading(stack, servers, settle))
            echo(f"  hub with {size} servers: {report.fmt(readings[-1]['hub_mib'], 0)} MiB")
        first = servers[0]
        idle = steady_mib(client, stack.server_container(first.name))
        first.kernel_id = first.start_kernel()["id"]
        first.first_result()
        time.sleep(5)
        with_kernel = steady_mib(client, stack.server_container(first.name))
        disk = disk_per_user(stack, servers)
    finally:
        stop_servers(servers)

    images = {}
    for role in ("hub", "notebook", "environment", "tls"):
        images[role] = client.images.get(stack.names.image(role)).attrs["Size"] / 2**20
    result = {
        "hub": readings,
        "user_server_idle_mib": idle,
        "user_server_with_kernel_mib": with_kernel,
        "bare_server_idle_mib": bare_idle,
        "bare_server_with_kernel_mib": bare_kernel,
        "disk_per_user": disk,
        "image_mib": images,
        "shared_environment_mib": volume_mib(client, stack.names.image("notebook"), stack.env_volume()),
        "targets": {"user_server_idle_mib": 80, "hub_mib_with_100": 150},
    }
    rows = [
        [
            f"hub, {r['servers']} servers",
            r["hub_mib"],
            report.fmt(r["user_server_mib"]["median"], 0) if "user_server_mib" in r else "-",
        ]
        for r in readings
    ]
    echo(report.table("Hub memory (MiB)", ["", "hub", "user server median"], rows, digits=0))
    for r in readings:
        top = sorted(r["processes_mib"].items(), key=lambda kv: -kv[1])[:4]
        echo(f"  {r['servers']} servers, hub processes (RSS MiB): " + "; ".join(f"{c[:40]} {m:.0f}" for c, m in top))
    echo(
        report.table(
            "User server memory (MiB)",
            ["", "through the hub", "bare docker run"],
            [["idle", idle, bare_idle], ["with a kernel that ran 1+1", with_kernel, bare_kernel]],
            digits=0,
        )
    )
    echo(
        report.table(
            "Disk and images (MiB)",
            ["", "MiB"],
            [
                ["home volume per user", disk["home_volume_mib"]],
                ["container layer per user", disk["container_layer_mib"]],
                *[[f"image {k}", v] for k, v in images.items()],
                ["shared environment volume", result["shared_environment_mib"]],
            ],
            digits=1,
        )
    )
    return result
