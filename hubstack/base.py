"""The Debian bookworm base every hubstack image is built FROM.

Where a registry answers, the configured base (default debian:bookworm-slim)
is pulled. Where none does (air-gapped sites, these build machines), the same
base is made from Debian's own packages with debootstrap and imported.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import docker.errors

from .common.contract import LOCAL_BASE
from .common.registry import DEFAULTS

DEFAULT_BASE = DEFAULTS["HUBSTACK_BASE_IMAGE"]
MIRROR = "http://deb.debian.org/debian"
PACKAGES = "python3,python3-venv,ca-certificates"


class BaseImageError(RuntimeError):
    pass


def apt_mirror():
    """The Debian mirror this host's apt uses (deb822 or one-line sources)."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")) + [Path("/etc/apt/sources.list")]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["URIs:"] and "security" not in line:
                return parts[1]
            if parts[:1] == ["deb"] and "security" not in line:
                return next(p for p in parts[1:] if "://" in p)
    return MIRROR


def ensure(client, wanted, say, log):
    """Return the name of a usable base image, pulling or making it if needed."""
    for name in (wanted, LOCAL_BASE) if wanted == DEFAULT_BASE else (wanted,):
        try:
            client.images.get(name)
            return name
        except docker.errors.ImageNotFound:
            pass
    try:
        repo, _, tag = wanted.partition(":")
        client.images.pull(repo, tag=tag or "latest")
        return wanted
    except docker.errors.APIError as err:
        reason = str(err.explanation or err).splitlines()[0]
        if wanted != DEFAULT_BASE:
            raise BaseImageError(
                f"base image {wanted} is not on this host and could not be pulled ({reason}): "
                "load it with `docker load`, or unset HUBSTACK_BASE_IMAGE"
            ) from None
    say(f"no registry answers ({reason}); making the base image {LOCAL_BASE} from Debian packages with debootstrap")
    make_with_debootstrap(client, log)
    return LOCAL_BASE


def make_with_debootstrap(client, log):
    if not shutil.which("debootstrap"):
        raise BaseImageError(
            "no registry and no debootstrap: install it (apt-get install debootstrap), "
            "or load a Debian bookworm image and set HUBSTACK_BASE_IMAGE"
        )
    with tempfile.TemporaryDirectory(prefix="hubstack-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(rootfs), apt_mirror()],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
        # Keep images small: no apt lists or caches in the base.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        repo, tag = LOCAL_BASE.split(":")
        client.api.import_image_from_stream(tar.stdout, repository=repo, tag=tag, changes=['CMD ["bash"]'])
        if tar.wait() != 0:
            raise BaseImageError("packing the debootstrap root file system failed")
