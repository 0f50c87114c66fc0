"""7. Egress: what closed egress costs against open, and what the proxy costs a download, in one run.

The hub is started with HUBSTACK_EGRESS=open (every server on the shared
network) and with closed (each server on a network of its own, which the hub
and the egress proxy join), alternately in blocks of rounds so that drift of
the machine falls on both, and measured the same way in both: spawn time
(start request -> the server's /api answers, as in the spawn benchmark), and
the hub's memory with the given number of servers running, idle. closed's
extra steps per spawn: making the network, attaching the hub and the proxy.

The proxy's cost: a file downloaded over HTTP and HTTPS from a host of the
allow-list in an outside world on this machine (hubclient.outside: reached
through the host's routing and NAT, like the internet), by a researcher's
server through the proxy, against a throwaway container of the same image
on a plain bridge network fetching it directly; alternately, timed inside
the container around the transfer alone. Needs root (the outside world is a
network namespace).
"""

import json
import os
import tempfile
from pathlib import Path

from hubclient.outside import OUTSIDE, OutsideWorld, self_signed
from hubstack.common.contract import Role

from . import report
from .footprint import hub_reading, start_servers, stop_servers
from .researcher import Researcher
from .spawn import rounds_of

MODES = ("open", "closed")
ALLOWED = "allowed.bench.test"
FILE = "download.bin"
DOWNLOAD = r"""
import json, os, ssl, sys, time, urllib.request
url = sys.argv[1]
proxy = os.environ.get("HTTPS_PROXY" if url.startswith("https") else "HTTP_PROXY")
handlers = [urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}),
            urllib.request.HTTPSHandler(context=ssl._create_unverified_context())]
started, size = time.monotonic(), 0
with urllib.request.build_opener(*handlers).open(url, timeout=600) as response:
    while chunk := response.read(1 << 20):
        size += len(chunk)
print(json.dumps({"seconds": time.monotonic() - started, "bytes": size}))
"""


def run(stack, rounds=10, servers=20, echo=print, settle=10, download_mib=100, downloads=5):
    if os.geteuid() != 0:
        raise SystemExit("bench: the egress benchmark builds an outside network namespace: run it as root")
    result = {"rounds": rounds, "servers": servers}
    blocks = [rounds // 2, rounds - rounds // 2] if rounds >= 4 else [rounds]
    with tempfile.TemporaryDirectory() as folder, stack.settings_changed() as environ:
        world = outside_world(Path(folder), download_mib)
        with OutsideWorld(world, folder, Path(folder) / "dns.log"):
            environ["HUBSTACK_EGRESS_ALLOW"] = ALLOWED
            environ["HUBSTACK_EGRESS_DNS"] = OUTSIDE  # the proxy resolves the allowed name in the outside world
            seconds = {mode: [] for mode in MODES}
            for block, n in enumerate(blocks):
                for mode in MODES:
                    environ["HUBSTACK_EGRESS"] = mode
                    stack.up()
                    seconds[mode] += rounds_of(stack, f"eg{mode}{block}", n, echo, f"{mode} (block {block + 1})")
            result["download"] = proxy_cost(stack, download_mib, downloads, echo)  # the hub is closed now
            for mode in reversed(MODES):
                environ["HUBSTACK_EGRESS"] = mode
                stack.up()
                result[mode] = {"spawn_s": report.summary(seconds[mode]), "spawn_raw": seconds[mode]}
                result[mode]["hub_mib"] = memory_with(stack, mode, servers, settle)
                echo(f"  {mode}: hub {result[mode]['hub_mib']:.0f} MiB with {servers} servers")
    result["spawn_ratio_median"] = report.ratio(
        result["closed"]["spawn_s"]["median"], result["open"]["spawn_s"]["median"]
    )
    echo(
        report.table(
            "Egress: spawn time (s), open vs closed",
            report.SUMMARY_COLUMNS,
            report.summary_rows({f"egress {m}": result[m]["spawn_s"] for m in MODES}),
        )
    )
    echo(
        f"closed/open spawn median: {report.fmt(result['spawn_ratio_median'])}; hub memory with {servers} servers: "
        f"open {result['open']['hub_mib']:.0f} MiB, closed {result['closed']['hub_mib']:.0f} MiB"
    )
    download = result["download"]
    rows = {f"{scheme} {how}": download[scheme][f"{how}_s"] for scheme in ("http", "https") for how in HOW}
    echo(report.table(f"Egress: {download_mib} MiB download (s)", report.SUMMARY_COLUMNS, report.summary_rows(rows)))
    echo(
        "proxied/direct median: "
        + ", ".join(f"{scheme} {report.fmt(download[scheme]['ratio_median'])}" for scheme in ("http", "https"))
    )
    return result


HOW = ("direct", "proxied")


def outside_world(folder, download_mib):
    """The folder the outside world serves (a file of download_mib MiB) and its certificate."""
    www = folder / "www"
    www.mkdir()
    (www / "index.html").write_text("outside-world\n")
    with open(www / FILE, "wb") as f:
        f.truncate(download_mib * 2**20)
    self_signed(folder, [ALLOWED])
    return www


def memory_with(stack, mode, servers, settle):
    users = [Researcher(stack.url, stack.user_name(f"egfoot{mode}", i)) for i in range(servers)]
    running = start_servers(stack, users)
    try:
        return hub_reading(stack, running, settle)["hub_mib"]
    finally:
        stop_servers(running)


def proxy_cost(stack, download_mib, downloads, echo):
    """Download times direct (plain network) and proxied (a researcher's server), alternately."""
    client = stack.client
    (researcher,) = start_servers(stack, [Researcher(stack.url, stack.user_name("egdl", 0))])
    server = client.containers.get(stack.server_container(researcher.name))
    plain = client.networks.create(
        f"{stack.name}-bench-plain", driver="bridge", labels=stack.names.labels(Role.BENCHMARK, benchmark=stack.run_id)
    )
    times = {scheme: {how: [] for how in HOW} for scheme in ("http", "https")}
    try:
        for i in range(downloads):
            for scheme in ("http", "https"):
                direct = client.containers.run(
                    stack.names.image("notebook"),
                    ["python3", "-c", DOWNLOAD, f"{scheme}://{OUTSIDE}/{FILE}"],
                    entrypoint=[],
                    network=plain.name,
                    labels=stack.names.labels(Role.BENCHMARK, benchmark=stack.run_id),
                    remove=True,
                )
                proxied = server.exec_run(["python3", "-c", DOWNLOAD, f"{scheme}://{ALLOWED}/{FILE}"])
                if proxied.exit_code != 0:
                    raise SystemExit(f"bench: the download through the proxy failed: {proxied.output.decode()[-500:]}")
                for how, out in (("direct", direct), ("proxied", proxied.output)):
                    got = json.loads(out.decode().strip().splitlines()[-1])
                    if got["bytes"] != download_mib * 2**20:
                        raise SystemExit(f"bench: {how} {scheme} download got {got['bytes']} bytes")
                    times[scheme][how].append(got["seconds"])
            echo(
                f"  download {i + 1}/{downloads}: "
                + ", ".join(
                    f"{s} {times[s]['direct'][-1]:.2f} s direct, {times[s]['proxied'][-1]:.2f} s proxied" for s in times
                )
            )
    finally:
        stop_servers([researcher])
        plain.remove()
    result = {"mib": download_mib, "downloads": downloads}
    for scheme, measured in times.items():
        result[scheme] = {f"{how}_s": report.summary(measured[how]) for how in HOW}
        result[scheme]["ratio_median"] = report.ratio(
            result[scheme]["proxied_s"]["median"], result[scheme]["direct_s"]["median"]
        )
    return result
