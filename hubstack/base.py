"""The Debian bookworm base every hubstack image is built FROM.

Where a registry answers, the configured base (default debian:bookworm-slim)
is pulled. Where none does (air-gapped sites, these build machines), the same
base is made from Debian's own packages with mmdebstrap (about twice as fast
as debootstrap here, and it writes the tar that is imported) and imported.
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
PACKAGES = "python3,python3-venv,ca-certificates,tini"  # what python/Dockerfile would install
# What Debian's own container images (debuerreotype) set, so that the made base
# behaves as debian:bookworm-slim does: dpkg without an fsync per file (package
# installs on fuse-overlayfs took several times longer with them), no
# documentation, manuals or translations, no translated package lists.
DPKG_OPTIONS = [
    "force-unsafe-io",
    *(
        f"path-exclude=/usr/share/{p}/*"
        for p in ("doc", "groff", "info", "linda", "lintian/overrides", "locale", "man")
    ),
    "path-include=/usr/share/doc/*/copyright",
]
APT_OPTIONS = ['Acquire::Languages "none"', 'Dir::Cache::pkgcache ""', 'Dir::Cache::srcpkgcache ""']


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
    say(f"no registry answers ({reason}); making the base image {LOCAL_BASE} from Debian packages with mmdebstrap")
    make_with_mmdebstrap(client, log)
    return LOCAL_BASE


def mmdebstrap_command(mirror):
    """mmdebstrap writing the base's root file system as a tar to its standard output."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={PACKAGES}",
        *(f"--dpkgopt={o}" for o in DPKG_OPTIONS),
        *(f"--aptopt={o}" for o in APT_OPTIONS),
        "bookworm",
        "-",
        mirror,
    ]


def make_with_mmdebstrap(client, log):
    if not shutil.which("mmdebstrap"):
        raise BaseImageError(
            "no registry and no mmdebstrap: install it (apt-get install mmdebstrap), "
            "or load a Debian bookworm image and set HUBSTACK_BASE_IMAGE"
        )
    # mmdebstrap leaves no package lists or downloaded packages in the tar, and keeps the
    # options above in the base's /etc/dpkg and /etc/apt for every image built on it.
    with tempfile.TemporaryFile() as rootfs:
        subprocess.run(mmdebstrap_command(apt_mirror()), stdout=rootfs, stderr=log, check=True)
        rootfs.seek(0)
        repo, tag = LOCAL_BASE.split(":")
        chunks = iter(lambda: rootfs.read(1 << 20), b"")  # sent chunked, as import_image_from_stream says
        client.api.import_image_from_stream(chunks, repository=repo, tag=tag, changes=['CMD ["bash"]'])
