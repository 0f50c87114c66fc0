"""Start at boot: the systemd unit of one instance, and what `hubstack serve` tells systemd.

`hubstack service install` writes `/etc/systemd/system/hubstack-<name>.service`
and the instance's environment file `<checkout>/.hubstack/<name>.env`;
`render_unit()` is the unit's whole text, a pure function (unit-tested,
`systemd-analyze verify`-ed).

The unit runs `hubstack serve` (Type=notify): it brings the stack up, says
READY=1 when /hub/health answers, then watches the hub container and exits
non-zero when the hub is gone and Docker does not bring it back (Docker 20.10
treats `docker kill` as a manual stop), so that systemd restarts it.
`systemctl stop` sends it SIGTERM and it runs `hubstack down`. There is no
ExecStop=: systemd also runs ExecStop= when the main process exits on its own,
which would stop every user's server before each restart-on-failure.
"""

import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .common.registry import KNOWN
from .errors import HubNotHealthy, ServiceError

UNIT_DIR = Path("/etc/systemd/system")
# compose.yml gives the hub 90 s to stop (its clean shutdown takes ~30 s);
# `hubstack down` then stops the user servers (10 s each at most).
STOP_TIMEOUT = 180
# Compose up and /hub/health (serve waits 180 s); a build extends it (EXTEND_TIMEOUT_USEC).
START_TIMEOUT = 300
RESTART_SEC = 10
# Settings that go into the instance's environment file when they are set at install time.
EXTRA_ENVIRONMENT = ("DOCKER_HOST",)
# Characters a path in a unit would have to be quoted or escaped for (specifiers, variables, spaces).
UNSAFE = re.compile(r"[\s\"'\\%$;]")


def unit_name(settings):
    return f"hubstack-{settings.name}.service"


def env_file(project, settings):
    return Path(project) / ".hubstack" / f"{settings.name}.env"


@dataclass(frozen=True)
class Command:
    """How systemd runs this hubstack: an interpreter that can import it, and PYTHONPATH if it needs one."""

    python: str
    pythonpath: str = ""


def this_command():
    """The interpreter running us; PYTHONPATH only if it cannot import hubstack without one."""
    python = os.path.realpath(sys.executable)
    package_parent = str(Path(__file__).resolve().parents[1])
    probe = subprocess.run(
        [python, "-I", "-c", "import hubstack, os; print(os.path.realpath(hubstack.__file__))"],
        cwd="/",
        capture_output=True,
        text=True,
    )
    found = probe.stdout.strip()
    same = probe.returncode == 0 and Path(found).resolve() == Path(__file__).resolve().parent / "__init__.py"
    return Command(python, "" if same else package_parent)


def check_path(what, path):
    if not str(path).startswith("/") or UNSAFE.search(str(path)):
        raise ServiceError(
            f"{what} {path} is not a plain absolute path a systemd unit can take: "
            "move it to a path without spaces, quotes, '%', '$', ';' or backslashes"
        )


def render_unit(settings, project, command):
    """The unit's text. settings: checked Settings; project: the checkout; command: a Command."""
    project = Path(project)
    for what, path in (
        ("the checkout", project),
        ("the Python interpreter", command.python),
        ("PYTHONPATH", command.pythonpath or "/"),
    ):
        check_path(what, path)
    name = unit_name(settings)
    environment = "Environment=PYTHONUNBUFFERED=1\n"  # every line in the journal at once
    if command.pythonpath:
        environment += f"Environment=PYTHONPATH={command.pythonpath}\n"
    return f"""\
# {name}: hubstack instance {settings.name}, written by `hubstack service install`;
# `hubstack service uninstall` removes it. Settings: {project}/.env, and
# {env_file(project, settings)} (what the environment gave at install time; it wins).
[Unit]
Description=hubstack JupyterHub {settings.name} ({settings.url})
Documentation=file:{project}/README.md
Requires=docker.service
After=docker.service network-online.target
Wants=network-online.target
# Never give up: a hub that could not start is tried again every {RESTART_SEC} s.
StartLimitIntervalSec=0

[Service]
# `serve` says READY=1 once /hub/health answers, then watches the hub container
# and exits non-zero when it is gone and Docker does not bring it back.
Type=notify
NotifyAccess=main
WorkingDirectory={project}
EnvironmentFile={env_file(project, settings)}
{environment}ExecStart={command.python} -m hubstack -C {project} serve
# `systemctl stop` sends SIGTERM to `serve` only (mixed), which then runs
# `hubstack down`: the hub and the user servers stop, no volume is removed.
# No ExecStop=: systemd runs it also when `serve` fails, and it would stop
# every user's server before each restart of the hub.
KillMode=mixed
TimeoutStartSec={START_TIMEOUT}
# Longer than compose.yml's stop_grace_period (90 s) plus the user servers.
TimeoutStopSec={STOP_TIMEOUT}
Restart=on-failure
RestartSec={RESTART_SEC}

[Install]
WantedBy=multi-user.target
"""


def render_env_file(settings, environ, known=KNOWN):
    """The instance's environment file: its name, and the settings the install-time environment gave."""
    lines = [
        f"# Settings of the hubstack instance {settings.name} for {unit_name(settings)}, written by",
        "# `hubstack service install`; they win over .env. Edit, then `systemctl restart` the unit.",
        f"HUBSTACK_NAME={settings.name}",
    ]
    for key in sorted(set(known) | set(EXTRA_ENVIRONMENT)):
        if key == "HUBSTACK_NAME" or key not in environ:
            continue
        value = environ[key]
        if "\n" in value:
            raise ServiceError(f"{key} has a line break: an environment file cannot hold it")
        quoted = (
            value
            if re.fullmatch(r"[A-Za-z0-9_./:,@+=-]*", value)
            else '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
        )
        lines.append(f"{key}={quoted}")
    return "\n".join(lines) + "\n"


def write_if_changed(path, text, mode=0o644):
    """Write text to path; True when the file changed."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def systemctl(*args, check=True):
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise ServiceError(f"`systemctl {' '.join(args)}` failed: {said[-1] if said else f'exit {result.returncode}'}")
    return result


def require_systemd():
    if os.geteuid() != 0:
        raise ServiceError("this needs root (it writes /etc/systemd/system and runs systemctl): run it with sudo")
    if not Path("/run/systemd/system").is_dir():
        raise ServiceError("systemd is not running on this machine (no /run/systemd/system): start the hub another way")


def notify(*lines):
    """Tell systemd (Type=notify) how we are; does nothing outside a notify service."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
        return True
    except OSError:
        return False


def preview(settings, project, environ):
    """What `install` would write: the unit and the environment file, with their paths."""
    unit_path, env_path = UNIT_DIR / unit_name(settings), env_file(project, settings)
    return (
        f"# {unit_path}\n{render_unit(settings, project, this_command())}\n"
        f"# {env_path}\n{render_env_file(settings, environ)}"
    )


def install(settings, project, environ, start=True, echo=print):
    """Write the unit and its environment file, enable it, and (re)start it if asked."""
    name = unit_name(settings)
    unit_path, env_path = UNIT_DIR / name, env_file(project, settings)
    files = (
        (env_path, render_env_file(settings, environ), 0o600),
        (unit_path, render_unit(settings, project, this_command()), 0o644),
    )
    changed = [str(path) for path, text, mode in files if write_if_changed(path, text, mode)]
    echo(f"wrote {', '.join(changed)}" if changed else f"{unit_path} is up to date")
    systemctl("daemon-reload")
    systemctl("enable", "--quiet", name)
    if not start:
        echo(f"{name} enabled: it starts at boot; start it now with `systemctl start {name}`")
        return
    active = systemctl("is-active", "--quiet", name, check=False).returncode == 0
    verb = "restart" if active and changed else "start"
    echo(f"{verb}ing {name} (returns when the hub answers)")
    if systemctl(verb, name, check=False).returncode != 0:
        raise HubNotHealthy(f"{name} did not start: see `systemctl status {name}` and `journalctl -u {name}`")


def uninstall(settings, project, echo=print):
    """Stop, disable and remove the unit and its environment file; no volume is touched."""
    name = unit_name(settings)
    unit_path, env_path = UNIT_DIR / name, env_file(project, settings)
    require_systemd()
    if unit_path.exists():
        echo(f"stopping and disabling {name} (the hub and its user servers stop; volumes are kept)")
        systemctl("disable", "--now", "--quiet", name)
        unit_path.unlink()
        systemctl("daemon-reload")
        systemctl("reset-failed", name, check=False)
        echo(f"removed {unit_path}")
    else:
        echo(f"no {name} in {UNIT_DIR}: nothing to remove")
    if env_path.exists():
        env_path.unlink()
        echo(f"removed {env_path}")


class StopRequested(Exception):
    pass


def serve(checked_stack, stack, timeout, echo=print):
    """`hubstack serve`: build what is missing, start, say READY=1, watch; `down` on SIGTERM.

    checked_stack() gives the Stack with settings that may start a hub;
    stack() one for stopping (its settings need not be complete).
    """

    def stop(signum, frame):
        raise StopRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = None
    try:
        running = checked_stack()

        def building(message):  # a build takes minutes: keep systemd's start timeout ahead of it
            echo(message)
            plain = re.sub(r"\x1b\[[0-9;]*m", "", str(message)).strip()  # without click's colours
            notify(f"STATUS=building: {plain[:80]}", "EXTEND_TIMEOUT_USEC=600000000")

        running.ensure_built(echo=building)
        name, names = running.settings.name, running.names
        notify(f"STATUS=starting the hub {name}")
        before = running.start()
        running.wait_healthy(timeout, before["hub"])
        notify("READY=1", f"STATUS=hub {name} healthy at {running.settings.url}")
        watching = names.hub_container + (f" and {names.tls_container}" if running.settings.tls.on else "")
        echo(f"hubstack {name} is up: {running.settings.public_url}; watching {watching}")
        running.watch()
    except StopRequested as why:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        notify("STOPPING=1", "STATUS=stopping: hubstack down")
        echo(f"{why}: stopping the hub and its user servers")
        stopped = (running or stack()).down()
        echo(f"stopped the hub and {stopped} user server(s); volumes kept")
