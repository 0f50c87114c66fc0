"""hubstack: build, start and look after a JupyterHub for controlled-access data.

Exit codes: 0 done; 2 a setting or argument to fix; 3 no Docker engine;
4 a build step failed; 5 the hub did not become healthy; 1 anything else.
"""

import json
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
    (project / "share").mkdir(exist_ok=True)
    secrets_dir, access_dir = settings.folders(project)
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # else Docker makes them, owned by root
    access_dir.mkdir(parents=True, exist_ok=True)
    compose.run(settings, project, "up", "--detach", *(["--force-recreate"] if recreate else []), "hub")


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
    click.echo(click.style(f"hubstack {settings.name} is up: {settings.url}", fg="green"))


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
    report = {"instance": settings.name, "url": settings.url, "hub": health,
              "servers": servers, "volumes": volumes, "images": images}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"hub {settings.name} at {settings.url}: {health}")
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
