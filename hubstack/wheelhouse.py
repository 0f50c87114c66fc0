"""Python wheels for the images, downloaded on the host for the images' Python.

Containers here cannot reach the package index (and an air-gapped site has
none), so every image installs with `pip install --no-index` from a folder of
wheels inside its build context. The wheels must match the image's CPython
(Debian bookworm's 3.11.2), not the host's.
"""

import re
import subprocess
import sys
from pathlib import Path

IMAGE_PYTHON = "3.11.2"
PLATFORMS = (
    "manylinux_2_36_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "any",
)


def pip_platform_args():
    args = ["--only-binary=:all:", "--python-version", IMAGE_PYTHON,
            "--implementation", "cp", "--abi", "cp311"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


# Packages the lock leaves out on purpose although a dependency names them.
# The hub and notebook images install their locks with --no-deps, so a lock
# is the whole set.
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


def missing_wheels(lock_file, wheel_dir):
    have = {wheel_pin(p.name) for p in Path(wheel_dir).glob("*.whl")}
    return {name: v for name, v in read_lock(lock_file).items() if (name, v) not in have}


def fill(lock_file, wheel_dir, log):
    """Make wheel_dir hold exactly the wheels of lock_file; download what is missing.

    Returns the number of wheels downloaded (0 when the wheelhouse was complete).
    """
    wheel_dir = Path(wheel_dir)
    wheel_dir.mkdir(parents=True, exist_ok=True)
    pins = read_lock(lock_file)
    for wheel in wheel_dir.glob("*.whl"):
        name, version = wheel_pin(wheel.name)
        if pins.get(name) != version:
            wheel.unlink()  # stale: not in the lock any more
    missing = missing_wheels(lock_file, wheel_dir)
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(wheel_dir),
               *pip_platform_args(), *(f"{n}=={v}" for n, v in sorted(missing.items()))]
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    still = missing_wheels(lock_file, wheel_dir)
    if still:
        raise RuntimeError(f"no wheel downloaded for {', '.join(sorted(still))}")
    return len(missing)


def _main(argv):
    if argv[:1] == ["--pip-platform-args"]:
        print(" ".join(pip_platform_args()))
    elif argv[:1] == ["--list-wheels"]:
        for name, version in sorted(wheel_pin(p.name) for p in Path(argv[1]).glob("*.whl")):
            if name not in LEFT_OUT:
                print(f"{name}=={version}")
    else:
        sys.exit("usage: python -m hubstack.wheelhouse --pip-platform-args | --list-wheels DIR")


if __name__ == "__main__":
    _main(sys.argv[1:])
