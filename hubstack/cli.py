"""hubstack: build, start and look after a JupyterHub for controlled-access data.

Exit codes: 0 done; 2 a setting or argument to fix; 3 no Docker engine;
4 a build step failed; 5 the hub did not become healthy; 1 anything else.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

import click

from . import build as building
from . import compose, engine
from .settings import SettingsError, load

EXIT = {SettingsError: 2, engine.EngineError: 3, building.BuildError: 4, compose.ComposeError: 1}


class HubNotHealthy(RuntimeError):
    pass


EXIT[HubNotHealthy] = 5


def fail(err):
    click.echo(click.style(f"hubstack: {err}", fg="red"), err=True)
    if isinstance(err, building.BuildError):
        click.echo(f"--- last lines of {err.log_path} ---\n{err.tail()}", err=True)
    sys.exit(next((code for kind, code in EXIT.items() if isinstance(err, kind)), 1))


class Group(click.Group):
    """Turn our own errors into one line and a meaningful exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except tuple(EXIT) as err:
            fail(err)


class Instance:
    """What every command needs: the project folder, the checked settings, the engine."""

    def __init__(self, project_dir):
        self._project_dir = project_dir

    @property
    def project(self):
        return engine.find_project(self._project_dir)

    def settings(self, dev=False):
        project = self.project
        return load(dotenv_path=project / ".env", DEV_MODE="1" if dev else None)

    def checked_settings(self, dev=False):
        """Settings that may start a hub: dev mode on loopback, or a complete production log-in."""
        settings = self.settings(dev=dev)
        settings.check_mode(*settings.folders(self.project))
        return settings


pass_instance = click.make_pass_decorator(Instance)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--project-dir", type=click.Path(file_okay=False), default=None,
              help="The hubstack checkout (default: the one you are in).")
@click.version_option(package_name="hubstack")
@click.pass_context
def main(ctx, project_dir):
    """Build, start and look after a hubstack JupyterHub.

    \b
    First time, for a local development hub on http://127.0.0.1:8000:
        hubstack up --dev
    Settings come from .env in the checkout and from the environment
    (HUBSTACK_NAME, HUBSTACK_PORT, HUBSTACK_BIND, DEV_MODE, ...); see README.md.

    \b
    Exit codes: 0 done, 2 a setting to fix, 3 no Docker engine,
    4 a build step failed, 5 the hub did not become healthy.
    """
    ctx.obj = Instance(project_dir)


@main.command()
@click.option("--no-cache", is_flag=True, help="Rebuild every image from scratch (the wheelhouse and base stay).")
@pass_instance
def build(instance, no_cache):
    """Build the images, the shared environment volume and the network.

    Safe to run again at any time: it rebuilds what changed, and refreshes
    the shared read-only environment when its packages changed. Running
    servers keep their environment until they restart; user volumes are
    never touched.
    """
    settings = instance.settings()
    client = engine.connect()
    building.Builder(client, settings, instance.project).run(nocache=no_cache)


def wait_healthy(client, settings, timeout):
    url = f"{settings.url}/hub/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        hub = engine.hub_container(client, settings)
        if hub is not None and (hub.attrs["RestartCount"] > 0 or hub.status == "exited"):
            last = [line for line in hub.logs(tail=20).decode(errors="replace").splitlines() if line.strip()]
            said = next((line for line in reversed(last) if line.startswith("hubstack:")), last[-1] if last else "")
            raise HubNotHealthy(f"the hub exits at start: {said} (see `hubstack logs`)")
        time.sleep(0.5)
    raise HubNotHealthy(f"the hub did not answer {url} within {timeout} s: see `hubstack logs`")


def start(instance, settings, client, recreate=False):
    project = instance.project
    engine.ensure_network(client, settings)
    engine.ensure_volume(client, settings.hub_data_volume, {**settings.labels, "hubstack.role": "hub-data"})
    engine.ensure_volume(client, settings.tls_data_volume, {**settings.labels, "hubstack.role": "tls-data"})
    if settings.tls.on:
        settings.acme_ca_root_file(project)  # a missing or wrong CA root stops here, before anything starts
    (project / "share").mkdir(exist_ok=True)
    secrets_dir, access_dir = settings.folders(project)
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # else Docker makes them, owned by root
    access_dir.mkdir(parents=True, exist_ok=True)
    if not settings.tls.on and tls_container(client, settings) is not None:
        compose.run(settings, project, "rm", "--stop", "--force", "tls")  # HTTPS turned off: no terminator left behind
    compose.run(settings, project, "up", "--detach", *(["--force-recreate"] if recreate else []), "hub")
    if settings.tls.on:  # the tls service (Caddy), recreated only when its settings changed
        compose.run(settings, project, "up", "--detach", "tls")


def tls_container(client, settings):
    found = client.containers.list(all=True, filters={"name": f"^{settings.tls_container}$",
                                                       "label": f"hubstack.instance={settings.name}"})
    return found[0] if found else None


def served_certificate(settings):
    """(notAfter, days left) of the certificate the tls service serves for HUBSTACK_DOMAIN; raises OSError/SSLError."""
    from .doctor import days_left
    from .doctor import served_certificate as read

    host = "127.0.0.1" if settings.loopback_bind or settings.bind == "0.0.0.0" else "::1" if settings.bind == "::" else settings.bind
    cert = read(host, settings.tls.https_port, settings.tls.domain)
    return cert["notAfter"], days_left(cert["notAfter"])


def wait_tls(client, settings, timeout):
    """Wait for the tls service to serve a certificate; a terminator that exits at start is an error, a slow CA is not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            not_after, days = served_certificate(settings)
            return f"certificate valid until {not_after} ({days:.0f} days)" if days >= 2 else \
                f"certificate valid until {not_after} ({days * 24:.0f} hours; renewed automatically)"
        except OSError:
            pass
        tls = tls_container(client, settings)
        if tls is not None and (tls.attrs["RestartCount"] > 0 or tls.status == "exited"):
            last = [line for line in tls.logs(tail=20).decode(errors="replace").splitlines() if line.strip()]
            said = next((line for line in reversed(last) if line.startswith("hubstack-tls:")), last[-1] if last else "")
            raise HubNotHealthy(f"the HTTPS terminator {settings.tls_container} exits at start: {said[:300]}")
        time.sleep(0.5)
    return f"no certificate served yet (an ACME CA can take a minute): see `docker logs {settings.tls_container}`"


@main.command()
@click.option("--dev", is_flag=True, help="Development mode (DEV_MODE=1): any user name logs in; loopback only.")
@click.option("--timeout", default=180, show_default=True, help="Seconds to wait for the hub to answer.")
@pass_instance
def up(instance, dev, timeout):
    """Start the hub (building whatever is missing) and wait until it answers."""
    settings = instance.checked_settings(dev=dev)
    client = engine.connect()
    builder = building.Builder(client, settings, instance.project)
    missing = builder.missing()
    if missing:
        click.echo(f"not built yet: {', '.join(missing)}; building")
        builder.run()
    start(instance, settings, client)
    wait_healthy(client, settings, timeout)
    if settings.tls.on:
        click.echo(f"HTTPS ({settings.https}): {wait_tls(client, settings, min(timeout, 60))}")
    click.echo(click.style(f"hubstack {settings.name} is up: {settings.public_url}", fg="green"))


@main.command()
@pass_instance
def down(instance):
    """Stop the hub and every user server of this instance. Removes no volume."""
    settings = instance.settings()
    client = engine.connect()
    compose.run(settings, instance.project, "down")
    servers = engine.user_containers(client, settings, all=True)
    for container in servers:
        container.stop(timeout=10)  # DockerSpawner's containers remove themselves on stop
    click.echo(f"stopped the hub and {len(servers)} user server(s) of {settings.name}; volumes kept")


def age(created):
    when = datetime.fromisoformat(created[:19]).replace(tzinfo=timezone.utc)
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@pass_instance
def status(instance, as_json):
    """Hub health, running user servers, volumes and images of this instance."""
    settings = instance.settings()
    client = engine.connect()
    try:
        with urllib.request.urlopen(f"{settings.url}/hub/health", timeout=3) as response:
            health = "healthy" if response.status == 200 else f"HTTP {response.status}"
    except OSError as err:
        health = f"not answering ({getattr(err, 'reason', err)})"
    servers = [{"name": c.name, "user": c.labels.get("hubstack.user", ""), "status": c.status}
               for c in engine.user_containers(client, settings)]
    volumes = [{"name": v.name, "role": v.attrs["Labels"].get("hubstack.role", "")}
               for v in engine.instance_volumes(client, settings)]
    images = []
    for image_name in [settings.image(i.role) for i in building.IMAGES]:
        image = engine.image_or_none(client, image_name)
        images.append({"name": image_name, "age": age(image.attrs["Created"]) if image else "missing",
                       "size_mb": round(image.attrs["Size"] / 1e6) if image else 0})
    https = {"mode": settings.https, "url": settings.public_url}
    if settings.tls.on:
        tls = tls_container(client, settings)
        https["terminator"] = tls.status if tls is not None else "not running"
        try:
            not_after, days = served_certificate(settings)
            https["certificate"] = {"not_after": not_after, "days_left": round(days, 1)}
        except OSError as err:
            https["certificate"] = {"error": str(err)[:200]}
    report = {"instance": settings.name, "url": settings.url, "hub": health, "https": https,
              "servers": servers, "volumes": volumes, "images": images}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"hub {settings.name} at {settings.url}: {health}")
    if settings.tls.on:
        cert = https["certificate"]
        served = (f"certificate valid until {cert['not_after']} ({cert['days_left']:.1f} days)" if "not_after" in cert
                  else f"no certificate served ({cert['error']})")
        click.echo(f"HTTPS ({settings.https}) at {settings.public_url}: terminator {https['terminator']}, {served}")
    else:
        click.echo("HTTPS off" + ("" if settings.loopback_bind else ": plain HTTP on a public address"))
    click.echo(f"user servers running: {len(servers)}")
    for s in servers:
        click.echo(f"  {s['name']:<48} {s['user']:<32} {s['status']}")
    click.echo(f"volumes: {len(volumes)}")
    for v in volumes:
        click.echo(f"  {v['name']:<48} {v['role']}")
    click.echo("images:")
    for i in images:
        click.echo(f"  {i['name']:<48} {i['age']:>8} {i['size_mb']:>6} MB")


@main.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@pass_instance
def logs(instance, follow):
    """The hub's log."""
    settings = instance.settings()
    compose.run(settings, instance.project, "logs", *(["--follow"] if follow else []), "hub")


@main.command()
@pass_instance
def shell(instance):
    """A root shell in the hub container.

    The checkout's share/ folder is mounted at /srv/hubstack/share: templates
    put in share/templates override the built-in ones at once, for trying
    look-and-feel changes live.
    """
    settings = instance.settings()
    client = engine.connect()
    if engine.hub_container(client, settings) is None:
        raise engine.EngineError(f"the hub {settings.hub_container} is not running: start it with `hubstack up`")
    tty = ["-it"] if sys.stdin.isatty() else ["-i"]
    sys.exit(subprocess.call(["docker", "exec", *tty, "-u", "0", "-w", "/srv/hubstack", settings.hub_container, "bash"]))


def runs_in_dev_mode(client, settings):
    hub = engine.hub_container(client, settings)
    return hub is not None and "DEV_MODE=1" in hub.attrs["Config"]["Env"]


@main.command()
@click.option("--dev", is_flag=True, help="Development mode; kept anyway if the running hub is in it.")
@click.option("--timeout", default=180, show_default=True, help="Seconds to wait for the hub to answer.")
@pass_instance
def reset(instance, dev, timeout):
    """Rebuild the hub image and restart the hub, in the mode it runs in.

    User data, the hub database and running user servers survive.
    """
    client = engine.connect()
    settings = instance.settings()
    settings = instance.checked_settings(dev=dev or runs_in_dev_mode(client, settings))
    hub_images = [i for i in building.IMAGES if i.role.startswith("hub")]
    building.Builder(client, settings, instance.project).run(images=hub_images)
    start(instance, settings, client, recreate=True)
    wait_healthy(client, settings, timeout)
    click.echo(click.style(f"hubstack {settings.name} restarted: {settings.url}", fg="green"))


def running_hub(client, settings):
    hub = engine.hub_container(client, settings)
    if hub is None or hub.status != "running":
        raise HubNotHealthy(f"the hub {settings.hub_container} is not running: start it with `hubstack up`")
    return hub


@main.group()
def access():
    """The access check of production log-in (approval registry, approval list)."""


@access.command("check")
@click.argument("email")
@pass_instance
def access_check(instance, email):
    """Ask every configured approval source about EMAIL, as the hub would.

    Runs inside the running hub, with its settings, secrets and network, and
    prints each source's answer and the decision. The audit log records the
    question (event "operator-check").

    \b
    Exit codes: 0 approved; 1 denied or expired; 6 a source was unavailable
    and none approved; 2 a setting to fix; 5 the hub is not running.
    """
    settings = instance.settings()
    hub = running_hub(engine.connect(), settings)
    result = hub.exec_run(["python3", "-m", "hubstack_hub.access", "check", email])
    try:
        report = json.loads(result.output.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise click.ClickException(f"the hub's access check failed: {result.output.decode(errors='replace')[-300:]}") from None
    if "error" in report:
        raise SettingsError(report["error"])
    colour = {"approved": "green", "unavailable": "yellow"}.get(report["decision"], "red")
    click.echo(click.style(f"{report['user']}: {report['decision']}", fg=colour, bold=True) + f" ({report['reason']})")
    for answer in report["sources"]:
        click.echo(f"  {answer['source']:<10} {answer['outcome']:<12} {answer['latency_ms']:>8.1f} ms  {answer['reason']}")
    for warning in report["warnings"]:
        click.echo(click.style(f"  warning: {warning}", fg="yellow"))
    sys.exit({"approved": 0, "unavailable": 6}.get(report["decision"], 1))


@access.command("log")
@click.option("-n", "--lines", default=20, show_default=True, help="How many of the newest decisions.")
@pass_instance
def access_log(instance, lines):
    """The newest decisions of the audit log (one JSON line each), oldest first.

    The whole log is /srv/jupyterhub/audit/access.jsonl on the hub data volume.
    """
    settings = instance.settings()
    hub = running_hub(engine.connect(), settings)
    result = hub.exec_run(["tail", "-n", str(lines), "/srv/jupyterhub/audit/access.jsonl"])
    click.echo(result.output.decode(errors="replace").rstrip() if result.exit_code == 0 else "no decisions logged yet")


@main.group()
def secrets():
    """The secret files of this instance (HUBSTACK_SECRETS_DIR, default secrets/)."""


@secrets.command("init")
@pass_instance
def secrets_init(instance):
    """Create the cookie secret and the auth-state crypt key, mode 600.

    Run once before the first production start. Files that exist are kept,
    never overwritten: a new cookie secret would log everyone out and a new
    crypt key would lose the OAuth tokens the hub keeps. The OAuth client
    secret and registry secrets come from elsewhere: see secrets.example/.
    """
    from .secrets import init

    folder, _ = instance.settings().folders(instance.project)
    for name, what in init(folder):
        click.echo(f"{what:<8} {folder / name}")
    click.echo("secrets are files, never .env: see secrets.example/ for the ones you provide")


@main.command()
@click.option("--dev", is_flag=True, help="Check for a dev-mode hub (DEV_MODE=1) instead of what .env says.")
@pass_instance
def doctor(instance, dev):
    """Check this host for running the hub: Docker, Compose, ports, disk,
    secrets, the certificate, the public name, memory.

    Prints one row per check with what to fix. Changes nothing.

    \b
    Exit codes: 0 nothing to fix (warnings may show), 1 a check failed.
    """
    from .doctor import FAIL, OK, run_checks

    rows = run_checks(instance, dev=dev)
    colour = {OK: "green", FAIL: "red"}
    for row in rows:
        status = click.style(f"{row.status:<5}", fg=colour.get(row.status, "yellow"), bold=True)
        click.echo(f"{status} {row.name:<18} {row.found}")
        if row.fix and row.status != OK:
            click.echo(f"      {'':<18} fix: {row.fix}")
    failed = [row.name for row in rows if row.status == FAIL]
    click.echo(f"{len(rows)} checks: " + (f"fix {', '.join(failed)}" if failed else "nothing to fix"))
    sys.exit(1 if failed else 0)


# -- start at boot: `hubstack serve` under systemd, `hubstack service install` --
class StopRequested(Exception):
    pass


def watch_hub(client, settings, poll=2.0, grace=10.0):
    """Return never; raise HubNotHealthy when the hub (or, with HTTPS on, its terminator) is gone
    and Docker does not bring it back.

    Docker restarts a container that crashes (restart: unless-stopped; state
    "restarting" meanwhile) but not one stopped by `docker kill`/`docker stop`.
    The grace covers Compose replacing the container (`hubstack reset`).
    """
    from docker.errors import DockerException, NotFound

    watched = {settings.hub_container: "hub"}
    if settings.tls.on:
        watched[settings.tls_container] = "HTTPS terminator"
    gone_since = {}
    while True:
        for name, role in watched.items():
            try:
                container = client.containers.get(name)
            except NotFound:
                container = None
            except (DockerException, OSError) as err:
                raise engine.EngineError(f"lost the Docker engine while watching the hub: {str(err)[:160]}") from None
            if container is not None and container.status in ("running", "restarting", "paused"):
                gone_since.pop(name, None)
            elif name not in gone_since:
                gone_since[name] = time.monotonic()
            elif time.monotonic() - gone_since[name] >= grace:
                what = "is gone" if container is None else \
                    f"is {container.status} (exit code {container.attrs['State']['ExitCode']})"
                raise HubNotHealthy(f"the {role} container {name} {what} and Docker did not restart it")
        time.sleep(poll)


@main.command()
@click.option("--timeout", default=180, show_default=True, help="Seconds to wait for the hub to answer.")
@click.pass_context
def serve(ctx, timeout):
    """Run the hub in the foreground: what the systemd unit runs.

    Builds what is missing, starts the hub, waits for /hub/health (then tells
    systemd READY=1), and watches the hub container: it exits 5 when the hub
    is gone and Docker does not bring it back, so that systemd starts it
    again. On SIGTERM (`systemctl stop`) or Ctrl-C it runs `hubstack down`:
    the hub and the user servers stop, no volume is removed.
    """
    from . import service as unit

    def stop(signum, frame):
        raise StopRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    instance = ctx.obj
    try:
        settings = instance.checked_settings()
        client = engine.connect()
        builder = building.Builder(client, settings, instance.project)
        missing = builder.missing()
        if missing:
            click.echo(f"not built yet: {', '.join(missing)}; building")

            def echo(message):  # a build takes minutes: keep systemd's start timeout ahead of it
                click.echo(message)
                unit.notify(f"STATUS=building: {click.unstyle(str(message)).strip()[:80]}", "EXTEND_TIMEOUT_USEC=600000000")

            building.Builder(client, settings, instance.project, echo=echo).run()
        unit.notify(f"STATUS=starting the hub {settings.name}")
        start(instance, settings, client)
        wait_healthy(client, settings, timeout)
        unit.notify("READY=1", f"STATUS=hub {settings.name} healthy at {settings.url}")
        watching = settings.hub_container + (f" and {settings.tls_container}" if settings.tls.on else "")
        click.echo(f"hubstack {settings.name} is up: {settings.public_url}; watching {watching}")
        watch_hub(client, settings)
    except StopRequested as why:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        unit.notify("STOPPING=1", "STATUS=stopping: hubstack down")
        click.echo(f"{why}: stopping the hub and its user servers")
        ctx.invoke(down)


@main.group("service")
def service_group():
    """Start the hub at boot: a systemd unit for this instance."""


@service_group.command("install")
@click.option("--dev", is_flag=True, help="Development mode (DEV_MODE=1): any user name logs in; loopback only.")
@click.option("--no-start", is_flag=True, help="Write and enable the unit, but do not start it now.")
@click.option("--print", "print_only", is_flag=True, help="Print the unit and the environment file; change nothing.")
@pass_instance
def service_install(instance, dev, no_start, print_only):
    """Write, enable and start the systemd unit hubstack-<HUBSTACK_NAME>.service.

    The unit runs `hubstack serve` after Docker, restarts it on failure, and
    starts the hub at boot. Settings come from .env as always; the ones given
    in the environment now (HUBSTACK_*, DEV_MODE, ...) are kept in
    .hubstack/<name>.env, the unit's environment file. Builds what is
    missing first; returns when the hub answers. Run it again after changing
    settings: it rewrites the unit and restarts it if anything changed.
    """
    from . import service as unit
    from .settings import KNOWN

    settings = instance.checked_settings(dev=dev)
    project = instance.project
    environ = {**os.environ, **({"DEV_MODE": "1"} if dev else {})}
    name, unit_path, env_path = unit.unit_name(settings), unit.UNIT_DIR / unit.unit_name(settings), unit.env_file(project, settings)
    unit_text = unit.render_unit(settings, project, unit.this_command())
    env_text = unit.render_env_file(settings, environ, KNOWN)
    if print_only:
        click.echo(f"# {unit_path}\n{unit_text}\n# {env_path}\n{env_text}", nl=False)
        return
    unit.require_systemd()
    client = engine.connect()
    builder = building.Builder(client, settings, project)
    missing = builder.missing()
    if missing:
        click.echo(f"not built yet: {', '.join(missing)}; building")
        builder.run()
    changed = [str(path) for path, text, mode in ((env_path, env_text, 0o600), (unit_path, unit_text, 0o644))
               if unit.write_if_changed(path, text, mode)]
    click.echo(f"wrote {', '.join(changed)}" if changed else f"{unit_path} is up to date")
    unit.systemctl("daemon-reload")
    unit.systemctl("enable", "--quiet", name)
    if no_start:
        click.echo(f"{name} enabled: it starts at boot; start it now with `systemctl start {name}`")
        return
    active = unit.systemctl("is-active", "--quiet", name, check=False).returncode == 0
    verb = "restart" if active and changed else "start"
    click.echo(f"{verb}ing {name} (returns when the hub answers)")
    if unit.systemctl(verb, name, check=False).returncode != 0:
        raise HubNotHealthy(f"{name} did not start: see `systemctl status {name}` and `journalctl -u {name}`")
    click.echo(click.style(f"hubstack {settings.name} runs as {name}, enabled at boot: {settings.url}", fg="green"))


@service_group.command("uninstall")
@pass_instance
def service_uninstall(instance):
    """Stop, disable and remove hubstack-<HUBSTACK_NAME>.service. Removes no volume."""
    from . import service as unit

    settings = instance.settings()
    name, unit_path = unit.unit_name(settings), unit.UNIT_DIR / unit.unit_name(settings)
    env_path = unit.env_file(instance.project, settings)
    unit.require_systemd()
    if unit_path.exists():
        click.echo(f"stopping and disabling {name} (the hub and its user servers stop; volumes are kept)")
        unit.systemctl("disable", "--now", "--quiet", name)
        unit_path.unlink()
        unit.systemctl("daemon-reload")
        unit.systemctl("reset-failed", name, check=False)
        click.echo(f"removed {unit_path}")
    else:
        click.echo(f"no {name} in {unit.UNIT_DIR}: nothing to remove")
    if env_path.exists():
        env_path.unlink()
        click.echo(f"removed {env_path}")


from .service import ServiceError  # noqa: E402  (stdlib only)

EXIT[ServiceError] = 1
