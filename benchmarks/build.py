"""5. Build: cold `hubstack build`, then rebuilds after the changes operators make.

Runs on a scratch copy of the checkout's tracked files (the working tree is
never edited) as the benchmarks' instance. Cold means an engine with no
hubstack image at all: the Debian base made by debootstrap, the shared
Python image and every instance's images are removed first, so no layer of
another instance can serve as cache. The baseline for each rebuild is a
rebuild with nothing changed, in the same run.
"""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from hubstack.common.contract import LABEL_INSTANCE, LOCAL_BASE, PYTHON_REPOSITORY

from . import report
from .stack import BENCH_NAME, PROJECT, BenchInstance

# A small pure-Python package that the shared environment does not have yet.
NEW_PACKAGE = "tabulate==0.9.0"


def hubstack_images(client):
    """Every image a hubstack build made on this engine: base, shared Python, all instances'."""
    found = {}
    for image in client.images.list():
        tags = image.tags or []
        shared = (LOCAL_BASE.split(":")[0] + ":", PYTHON_REPOSITORY + ":")
        if (image.labels or {}).get(LABEL_INSTANCE) or any(t.startswith(shared) for t in tags):
            found[image.id] = tags
    return found


def remove_all_images(client):
    images = hubstack_images(client)
    users = {}
    for container in client.containers.list(all=True):
        if container.image is not None and container.image.id in images:
            users.setdefault(container.labels.get(LABEL_INSTANCE, container.name), []).append(container.name)
    if users:
        names = ", ".join(sorted(users))
        raise SystemExit(
            f"bench: a cold build removes every hubstack image, and these instances still have containers: "
            f"{names}; stop them first (`HUBSTACK_NAME=<name> hubstack down`)"
        )
    for image_id, tags in images.items():
        for tag in tags:
            client.images.remove(tag, noprune=False)
        try:
            client.images.remove(image_id, force=False)
        except Exception:  # noqa: BLE001 - already gone with its last tag
            pass
    client.images.prune(filters={"dangling": True})
    return len(images)


def scratch_copy(folder):
    """The checkout's tracked files (and nothing it built or downloaded) in folder."""
    files = subprocess.run(["git", "-C", str(PROJECT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source, target = PROJECT / name, Path(folder) / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return Path(folder)


def timed_build(bench):
    seconds, steps = bench.build()
    return {"seconds": seconds, "steps": steps}


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def run(echo=print, cold=True):
    with tempfile.TemporaryDirectory(prefix="hubstack-bench-build-") as folder:
        project = scratch_copy(folder)
        stack = BenchInstance(BENCH_NAME, project=project)
        result = {}
        if cold:
            echo(f"  removed {remove_all_images(stack.client)} hubstack images; cold build")
            result["cold"] = timed_build(stack)
        else:
            timed_build(stack)
        echo("  rebuild with nothing changed")
        result["no_change"] = timed_build(stack)
        stamp = time.strftime("%H%M%S")
        changes = {
            "hub_template": lambda: append(project / "hub/templates/error.html", f"\n{{# bench {stamp} #}}\n"),
            "hub_config": lambda: append(project / "hub/jupyterhub_config.py", f"\n# bench {stamp}\n"),
            "environment_packages": lambda: (
                append(project / "environment/requirements.in", f"\n{NEW_PACKAGE.split('==')[0]}\n"),
                append(project / "environment/requirements.lock", f"{NEW_PACKAGE}\n"),
            ),
        }
        for name, change in changes.items():
            change()
            echo(f"  rebuild after a change to {name.replace('_', ' ')}")
            result[name] = timed_build(stack)
        # The scratch images stay tagged as the benchmarks' instance; rebuilding from the
        # checkout (the other benchmarks' `hubstack up`) replaces them.
    rows = [
        [name.replace("_", " "), r["seconds"], report.ratio(r["seconds"], result["no_change"]["seconds"])]
        for name, r in result.items()
    ]
    echo(report.table("hubstack build (s)", ["", "seconds", "x no-change rebuild"], rows, digits=1))
    for name, r in result.items():
        slow = sorted(r["steps"].items(), key=lambda kv: -kv[1])[:4]
        echo(f"  {name}: " + ", ".join(f"{step} {s:.1f}" for step, s in slow))
    result["target"] = {"hub_template_s": 15}
    return result
