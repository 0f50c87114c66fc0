"""Run whichever Compose this host has: `docker compose` (v2) or `docker-compose` (v1)."""

import functools
import os
import shutil
import subprocess

from . import engine
from .common.contract import EGRESS_PROFILE, NO_TLS_FILES, TLS_FOLDER, TLS_PROFILE
from .errors import ComposeError


@functools.lru_cache(maxsize=1)
def command():
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed: install Docker Compose")


def argv(settings, project, *args):
    return [
        *command(),
        "--project-name",
        settings.name,
        "--project-directory",
        str(project),
        "--file",
        str(project / "compose.yml"),
        *args,
    ]


def derived(settings):
    """Compose variables the CLI computes from the settings; compose.yml's defaults are never more open.

    The tls and egress services are in Compose profiles of their names: a hand-run
    `docker compose up` starts only the hub unless asked (`--profile tls`). The
    CLI activates the profiles always, so that `down` and `logs` see the
    services, and names the services it starts. The egress proxy is told the
    host's own addresses, which it never connects to. The terminator gets the certificate's own folder in
    the secrets folder with HUBSTACK_HTTPS=files, an empty folder otherwise:
    never the other secrets.
    """
    return {
        "COMPOSE_PROFILES": f"{TLS_PROFILE},{EGRESS_PROFILE}",
        "HUBSTACK_HOST_ADDRESSES": ",".join(
            sorted(a for a in engine.local_addresses() if ":" not in a and not a.startswith("127."))
        ),
        "HUBSTACK_HUB_BIND": settings.hub_bind,
        "HUBSTACK_TLS_FILES_DIR": f"{settings.raw['HUBSTACK_SECRETS_DIR'].rstrip('/')}/{TLS_FOLDER}"
        if settings.https == "files"
        else NO_TLS_FILES,
    }


def environment(settings):
    """The process environment with the checked settings, for variable substitution."""
    return {**os.environ, **settings.as_environment(), **derived(settings)}


def run(settings, project, *args, capture=False):
    result = subprocess.run(
        argv(settings, project, *args), env=environment(settings), capture_output=capture, text=True
    )
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise ComposeError(f"`{' '.join(command())} {' '.join(args)}` failed" + (f": {detail[0]}" if detail else ""))
    return result
