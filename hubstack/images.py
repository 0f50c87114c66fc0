"""The images `hubstack build` makes, and what each is built from.

Each image has a folder named as its role. Its build context is that folder
(less its .dockerignore), plus, where the image needs them:
- `wheels/`: the wheels of the folder's requirements.lock, from the host's
  wheel cache (hubstack.wheelhouse), never copied into the checkout;
- programs taken out of those wheels (uv, for the Python image), by name;
- `lib/hubstack/common/`: the package of names, paths and settings the host
  and the images share (hubstack.common), whole.
hubstack.assemble copies from this list of files what the Dockerfile's COPY
steps name; the same list gives the digest that lets a build skip an image
whose inputs are unchanged.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import exclude_paths

from .common.contract import BUILD_ARGS

PACKAGE = Path(__file__).resolve().parent  # hubstack/, for the shared package


@dataclass(frozen=True)
class Image:
    role: str  # names the image: <instance>-<role>
    folder: str  # the build context's folder, relative to the checkout
    parent: str = "python"  # the role of the image it is built FROM ("" for the base)
    wheels: bool = False  # installs <folder>/requirements.lock from wheels/
    common: bool = False  # imports hubstack.common (from lib/)
    programs: tuple = ()  # programs taken out of the lock's wheels into the context, by name

    @property
    def parent_arg(self):
        """The Dockerfile's ARG naming the parent image, e.g. HUB_CORE_IMAGE."""
        return f"{(self.parent or 'base').replace('-', '_').upper()}_IMAGE"


# Shared by every instance built on the same base, like the base itself, so
# that a second instance reuses all cached layers.
PYTHON = Image("python", "python", parent="", wheels=True, programs=("uv",))
# Debian's restic and the steps of `hubstack backup` and `hubstack restore`, run as a throwaway container.
BACKUP = Image("backup", "backup", common=True)
# The images of one instance, named and labelled with HUBSTACK_NAME.
IMAGES = (
    Image("hub-core", "hub-core", wheels=True),  # JupyterHub, DockerSpawner, OAuthenticator, the proxy
    Image("hub", "hub", parent="hub-core", common=True),  # hubstack's configuration, templates and hub code
    Image("notebook", "notebook", wheels=True),  # JupyterLab, the single-user server
    Image("environment", "environment", wheels=True),  # the shared scientific environment, copied to a volume
    Image("tls", "tls", common=True),  # Caddy, the HTTPS terminator (compose.yml's tls service)
    Image("egress", "egress", common=True),  # squid and the sinkhole DNS of closed egress (the egress service)
    Image("database", "database"),  # MariaDB, the private database beside a server (profiles with database = true)
    BACKUP,
)


def build_args(image, parent):
    return {image.parent_arg: parent, **BUILD_ARGS}


class Context:
    """The files of one image's build context: (name in the context, file on this machine)."""

    def __init__(self, project, image, wheel_files=(), programs=None):
        folder = Path(project) / image.folder
        ignore = folder / ".dockerignore"
        patterns = (
            [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
            if ignore.is_file()
            else []
        )
        self.entries = [(name, folder / name) for name in sorted(exclude_paths(str(folder), patterns))]
        self.wheels = set()
        if image.common:
            self.entries.append(("lib/hubstack/__init__.py", PACKAGE / "__init__.py"))
            self.entries += [(f"lib/hubstack/common/{p.name}", p) for p in sorted((PACKAGE / "common").glob("*.py"))]
        for path in wheel_files:
            self.entries.append((f"wheels/{path.name}", path))
            self.wheels.add(f"wheels/{path.name}")
        for name, path in (programs or {}).items():  # from a wheel: named by it, like the wheels
            self.entries.append((name, path))
            self.wheels.add(name)

    def digest(self, args):
        """sha256 of the context's files, with the build arguments (and the parent image's id)."""
        digest = hashlib.sha256(json.dumps(sorted(args.items())).encode())
        for name, path in self.entries:
            if path.is_symlink():
                digest.update(f"\0{name}\0link:{path.readlink()}".encode())
            elif path.is_dir():
                digest.update(f"\0{name}\0dir".encode())
            elif name in self.wheels:
                # A published wheel never changes: its file name and size say which it is.
                digest.update(f"\0{name}\0{path.stat().st_size}".encode())
            else:
                digest.update(f"\0{name}\0{path.stat().st_mode & 0o777:o}\0".encode())
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()
