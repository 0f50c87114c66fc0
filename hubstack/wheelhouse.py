"""Python wheels for the images, from one cache per host, for the images' Python.

Containers here cannot reach the package index (and an air-gapped site has
none), so every image installs with `pip install --no-index` from wheels
that `hubstack build` puts in its build context. The wheels must match the
image's CPython (Debian bookworm's 3.11.2), not the host's.

Wheels are downloaded once per host into a cache folder that every checkout
and instance shares (HUBSTACK_WHEEL_CACHE, default ~/.cache/hubstack/wheels):
a wheel file is never changed once published, so a file in the cache is
never downloaded again. The index sometimes answers a pinned download with
no versions for a moment; a failed download is retried with back-off.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

IMAGE_PYTHON = "3.11.2"
PLATFORMS = (
    "manylinux_2_36_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "any",
)
# Seconds to wait before each retry of a failed download.
BACKOFF = (5, 15, 45)


def pip_platform_args():
    args = ["--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp", "--abi", "cp311"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


# Packages the lock leaves out on purpose although a dependency names them.
# The images install their locks with --no-deps, so a lock is the whole set.
LEFT_OUT = {
    # jsonschema's optional IRI format check, pulled in by jupyter-events: it
    # compiles a Lark grammar at import, 1.2-1.6 s of every user server's and
    # the hub's start on a 2-core VM; nothing in either validates IRIs.
    "rfc3987-syntax": "slow import, unused",
    "lark": "only rfc3987-syntax needs it",
}


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_pin(filename):
    """'numpy-2.1.0-cp311-...whl' -> ('numpy', '2.1.0')."""
    name, version = filename.split("-")[:2]
    return canonical(name), version


def read_lock(lock_file):
    pins = {}
    for line in Path(lock_file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def cache_folder(setting=""):
    """HUBSTACK_WHEEL_CACHE, or ~/.cache/hubstack/wheels (XDG_CACHE_HOME if set)."""
    if setting.strip():
        return Path(setting.strip())
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubstack" / "wheels"


def cached(folder):
    """{(name, version): path} of the wheels in folder."""
    found = {}
    for path in sorted(Path(folder).glob("*.whl")):
        found.setdefault(wheel_pin(path.name), path)
    return found


def pip_download(pins, dest, log):
    """Download the wheels of pins ({name: version}) into dest with the host's pip."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        *pip_platform_args(),
        *(f"{n}=={v}" for n, v in sorted(pins.items())),
    ]
    subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)


def ensure(lock_file, cache, log, download=pip_download, backoff=BACKOFF, sleep=time.sleep, say=lambda _: None):
    """The wheel files of lock_file, from cache, downloading into it what is missing.

    Returns (paths in lock order, number downloaded). A download lands in a
    folder of its own inside the cache and each wheel is moved in whole, so
    two builds at once never see half a file.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    pins = read_lock(lock_file)
    missing = {n: v for n, v in pins.items() if (n, v) not in cached(cache)}
    wanted = dict(missing)
    for attempt in range(len(backoff) + 1):
        if not missing:
            break
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as partial:
            try:
                download(missing, partial, log)
                failure = None
            except (subprocess.CalledProcessError, OSError) as err:
                failure = err
            for path in Path(partial).glob("*.whl"):
                os.replace(path, cache / path.name)
        missing = {n: v for n, v in missing.items() if (n, v) not in cached(cache)}
        if missing and attempt < len(backoff):
            why = f"pip failed ({failure})" if failure else "pip gave no wheel"
            say(f"{len(missing)} wheel(s) not downloaded ({why}); trying again in {backoff[attempt]} s")
            if log:
                log.write(f"\nattempt {attempt + 1}: {why}; missing {sorted(missing)}\n")
                log.flush()
            sleep(backoff[attempt])
    if missing:
        raise RuntimeError(
            f"no wheel downloaded for {', '.join(f'{n}=={v}' for n, v in sorted(missing.items()))} "
            f"after {len(backoff) + 1} attempts: is the package index reachable?"
        )
    have = cached(cache)
    return [have[pin] for pin in pins.items()], len(wanted)


def script_of(wheel, name, cache):
    """The program `name` that wheel carries (in its .data/scripts), unpacked once into cache/scripts/."""
    wheel = Path(wheel)
    target = Path(cache) / "scripts" / wheel.name.removesuffix(".whl") / name
    if not target.is_file():
        with zipfile.ZipFile(wheel) as archive:
            member = next((m for m in archive.namelist() if m.endswith(f".data/scripts/{name}")), None)
            if member is None:
                raise RuntimeError(f"{wheel.name} carries no program {name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            with archive.open(member) as source, open(partial, "wb") as out:
                shutil.copyfileobj(source, out)
            partial.chmod(0o755)
            os.replace(partial, target)
    return target


def uv_compile_args():
    """`uv pip compile` resolving for the images' Python and platform (scripts/lock)."""
    platform = "x86_64-" + PLATFORMS[0].removesuffix("_x86_64")  # uv names it x86_64-manylinux_2_36
    return ["--python-version", IMAGE_PYTHON, "--python-platform", platform, "--only-binary", ":all:"]


def lock_lines(pins):
    """A lock's lines from resolved pins ({name: version}): canonical names, sorted, less LEFT_OUT."""
    return [f"{n}=={v}" for n, v in sorted((canonical(n), v) for n, v in pins.items()) if n not in LEFT_OUT]


def _main(argv):
    if argv[:1] == ["--pip-platform-args"]:
        print(" ".join(pip_platform_args()))
    elif argv[:1] == ["--uv-compile-args"]:
        print(" ".join(uv_compile_args()))
    elif argv[:1] == ["--uv"] and len(argv) == 2:
        # The uv the images use (its lock, e.g. python/requirements.lock), from this host's wheel cache.
        cache = cache_folder(os.environ.get("HUBSTACK_WHEEL_CACHE", ""))
        (wheel,), _ = ensure(argv[1], cache, sys.stderr)
        print(script_of(wheel, "uv", cache))
    elif argv[:1] == ["--lock-from"]:
        print("\n".join(lock_lines(read_lock(argv[1]))))
    else:
        sys.exit(
            "usage: python -m hubstack.wheelhouse --pip-platform-args | --uv-compile-args | --uv LOCK | --lock-from FILE"
        )


if __name__ == "__main__":
    _main(sys.argv[1:])
