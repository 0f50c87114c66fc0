"""Spawn through the hub against a bare `docker run` of the same image, same run.

Usage: python benchmarks/spawn.py [--rounds N] [--url http://127.0.0.1:8000]
Needs a running dev-mode instance (`hubstack up --dev`); reads HUBSTACK_NAME.
Prints a table and writes benchmarks/results/spawn.json. Not a test: it
asserts nothing, it measures.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser_client import BrowserUser  # noqa: E402

from hubstack import engine  # noqa: E402
from hubstack.settings import load, short_id  # noqa: E402


def hub_spawn(url, name):
    user = BrowserUser(url, name)
    user.login()
    started = time.monotonic()
    response = user.api("POST", f"/users/{name}/server")
    assert response.status_code in (201, 202), response.text
    while not (user.me()["servers"].get("") or {}).get("ready"):
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    user.stop_server()
    return elapsed


def bare_run(client, settings, env_volume, name):
    """The same image, mounts and network, started by hand, until its API answers."""
    volume = f"{settings.name}-bench-{name}"
    started = time.monotonic()
    container = client.containers.run(
        settings.image("notebook"), ["jupyter", "server", "--ip=0.0.0.0", "--port=8888", "--IdentityProvider.token="],
        detach=True, remove=True, network=settings.network, name=f"{settings.name}-bench-{name}",
        volumes={volume: {"bind": "/home/jovyan", "mode": "rw"}, env_volume: {"bind": "/opt/conda", "mode": "ro"}},
    )
    container.reload()
    ip = container.attrs["NetworkSettings"]["Networks"][settings.network]["IPAddress"]
    while True:
        try:
            with urllib.request.urlopen(f"http://{ip}:8888/api", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    container.stop(timeout=5)
    container.wait(condition="removed")
    client.volumes.get(volume).remove()
    return elapsed


def memory_mib(client, container_name):
    stats = client.containers.get(container_name).stats(stream=False)
    usage = stats["memory_stats"]
    return (usage["usage"] - usage.get("stats", {}).get("cache", 0)) / 2**20


def summary(values):
    values = sorted(values)
    return {"median": statistics.median(values), "p95": values[max(0, round(0.95 * len(values)) - 1)],
            "min": values[0], "max": values[-1]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = load(dotenv_path=Path(".env"))
    client = engine.connect()
    current = client.images.get(f"{settings.image('environment')}:current")
    env_volume = settings.env_volume(short_id(current.id))
    hub, bare = [], []
    for i in range(args.rounds):  # interleaved, so both see the same machine
        hub.append(hub_spawn(settings.url, f"bench{i}"))
        bare.append(bare_run(client, settings, env_volume, f"bench{i}"))
    # idle memory: one server left running for a while
    user = BrowserUser(settings.url, "benchidle")
    user.login()
    user.start_server()
    time.sleep(10)
    result = {
        "hub_spawn_s": summary(hub), "bare_run_s": summary(bare),
        "ratio_median": statistics.median(hub) / statistics.median(bare),
        "hub_idle_mib": memory_mib(client, settings.hub_container),
        "user_server_idle_mib": memory_mib(client, f"{settings.user_prefix}-benchidle"),
        "image_mb": {r: client.images.get(settings.image(r)).attrs["Size"] / 1e6
                     for r in ("hub", "notebook", "environment")},
    }
    user.stop_server()
    print(f"{'':<22}{'median':>8}{'p95':>8}{'min':>8}{'max':>8}")
    for label, key in (("hub spawn (s)", "hub_spawn_s"), ("bare docker run (s)", "bare_run_s")):
        row = result[key]
        print(f"{label:<22}" + "".join(f"{row[k]:>8.2f}" for k in ("median", "p95", "min", "max")))
    print(f"ratio hub/bare (median): {result['ratio_median']:.2f}")
    print(f"idle memory: hub {result['hub_idle_mib']:.0f} MiB, user server {result['user_server_idle_mib']:.0f} MiB")
    print("image sizes: " + ", ".join(f"{k} {v:.0f} MB" for k, v in result["image_mb"].items()))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "spawn.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
