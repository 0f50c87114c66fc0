"""hubstack: build, start and look after a JupyterHub for controlled-access data.

Only click and formatting live here: what each command does is in
hubstack.stack (the stack as a whole), hubstack.build, hubstack.doctor and
hubstack.service; exit codes are hubstack.errors.EXIT_CODES.
"""

import json
import os
import subprocess
import sys

import click

from . import doctor, errors, secrets, service
from .common.contract import HUB_HOME
from .common.parse import SettingsError
from .images import IMAGES
from .stack import Instance, Stack


class Group(click.Group):
    """Turn our own errors into one line and a meaningful exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (SettingsError, errors.HubstackError) as err:
            click.echo(click.style(f"hubstack: {err}", fg="red"), err=True)
            if isinstance(err, errors.BuildError):
                click.echo(f"--- last lines of {err.log_path} ---\n{err.tail()}", err=True)
            sys.exit(errors.exit_code(err))


pass_instance = click.make_pass_decorator(Instance)
DEV = click.option("--dev", is_flag=True, help="Development mode (DEV_MODE=1): any user name logs in; loopback only.")
TIMEOUT = click.option("--timeout", default=180, show_default=True, help="Seconds to wait for the hub to answer.")


def stack_of(instance, dev=False, checked=False):
    settings = instance.checked_settings(dev=dev) if checked else instance.settings(dev=dev)
    return Stack(instance.project, settings)


def says_up(stack, https_line, verb="is up", url=None):
    if https_line:
        click.echo(https_line)
    click.echo(click.style(f"hubstack {stack.settings.name} {verb}: {url or stack.settings.public_url}", fg="green"))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=errors.exit_code_help())
@click.option(
    "-C",
    "--project-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The hubstack checkout (default: the one you are in).",
)
@click.version_option(package_name="hubstack")
@click.pass_context
def main(ctx, project_dir):
    """Build, start and look after a hubstack JupyterHub.

    \b
    First time, for a local development hub on this machine (http://127.0.0.1,
    port HUBSTACK_PORT, 8000 unless set):
        hubstack up --dev
    Settings come from .env in the checkout and from the environment
    (HUBSTACK_NAME, HUBSTACK_PORT, HUBSTACK_BIND, DEV_MODE, ...); see README.md.
    """
    ctx.obj = Instance(project_dir)


@main.command("build")
@click.option("--no-cache", is_flag=True, help="Rebuild every image from scratch (the wheel cache and base stay).")
@pass_instance
def build_command(instance, no_cache):
    """Build the images, the shared environment volume and the network.

    Safe to run again at any time: it rebuilds what changed, and refreshes
    the shared read-only environment when its packages changed. Running
    servers keep their environment until they restart; user volumes are
    never touched.
    """
    stack_of(instance).build(nocache=no_cache)


@main.command("up")
@DEV
@TIMEOUT
@pass_instance
def up_command(instance, dev, timeout):
    """Start the hub (building whatever is missing) and wait until it answers."""
    stack = stack_of(instance, dev=dev, checked=True)
    says_up(stack, stack.up(timeout=timeout))


@main.command("down")
@pass_instance
def down_command(instance):
    """Stop the hub and every user server of this instance. Removes no volume."""
    stack = stack_of(instance)
    stopped = stack.down()
    click.echo(f"stopped the hub and {stopped} user server(s) of {stack.settings.name}; volumes kept")


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@pass_instance
def status_command(instance, as_json):
    """Hub health, running user servers, volumes and images of this instance."""
    stack = stack_of(instance)
    report = stack.status()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    settings = stack.settings
    click.echo(f"hub {settings.name} at {settings.url}: {report['hub']}")
    https = report["https"]
    if settings.tls.on:
        cert = https["certificate"]
        served = (
            f"certificate valid until {cert['not_after']} ({cert['days_left']:.1f} days)"
            if "not_after" in cert
            else f"no certificate served ({cert['error']})"
        )
        click.echo(f"HTTPS ({settings.https}) at {settings.public_url}: terminator {https['terminator']}, {served}")
    else:
        click.echo("HTTPS off" + ("" if settings.loopback_bind else ": plain HTTP on a public address"))
    click.echo(f"user servers running: {len(report['servers'])}")
    for s in report["servers"]:
        click.echo(f"  {s['name']:<48} {s['user']:<32} {s['status']}")
    click.echo(f"volumes: {len(report['volumes'])}")
    for v in report["volumes"]:
        click.echo(f"  {v['name']:<48} {v['role']}")
    click.echo("images:")
    for i in report["images"]:
        click.echo(f"  {i['name']:<48} {i['age']:>8} {i['size_mb']:>6} MB")


@main.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@pass_instance
def logs_command(instance, follow):
    """The hub's log."""
    stack_of(instance).compose("logs", *(["--follow"] if follow else []), "hub")


@main.command("shell")
@pass_instance
def shell_command(instance):
    """A root shell in the hub container.

    The checkout's share/ folder is mounted in the hub: templates put in
    share/templates override the built-in ones at once, for trying
    look-and-feel changes live.
    """
    stack = stack_of(instance)
    if stack.hub is None:
        raise errors.EngineError(f"the hub {stack.names.hub_container} is not running: start it with `hubstack up`")
    tty = ["-it"] if sys.stdin.isatty() else ["-i"]
    sys.exit(subprocess.call(["docker", "exec", *tty, "-u", "0", "-w", HUB_HOME, stack.names.hub_container, "bash"]))


@main.command("reset")
@click.option("--dev", is_flag=True, help="Development mode; kept anyway if the running hub is in it.")
@TIMEOUT
@pass_instance
def reset_command(instance, dev, timeout):
    """Rebuild the hub image and restart the hub, in the mode it runs in.

    User data, the hub database and running user servers survive.
    """
    dev = dev or stack_of(instance).runs_in_dev_mode()
    stack = stack_of(instance, dev=dev, checked=True)
    stack.build(images=[i for i in IMAGES if i.role.startswith("hub")])
    says_up(stack, stack.up(timeout=timeout, recreate=True), verb="restarted", url=stack.settings.url)


@main.group("access")
def access_group():
    """The access check of production log-in (approval registry, approval list)."""


@access_group.command("check")
@click.argument("email")
@pass_instance
def access_check_command(instance, email):
    """Ask every configured approval source about EMAIL, as the hub would.

    Runs inside the running hub, with its settings, secrets and network, and
    prints each source's answer and the decision. The audit log records the
    question (event "operator-check").

    \b
    Exit codes: 0 approved; 1 denied or expired; 6 a source was unavailable
    and none approved; 2 a setting to fix; 5 the hub is not running.
    """
    report = stack_of(instance).access_check(email)
    colour = {"approved": "green", "unavailable": "yellow"}.get(report["decision"], "red")
    click.echo(click.style(f"{report['user']}: {report['decision']}", fg=colour, bold=True) + f" ({report['reason']})")
    for answer in report["sources"]:
        click.echo(
            f"  {answer['source']:<10} {answer['outcome']:<12} {answer['latency_ms']:>8.1f} ms  {answer['reason']}"
        )
    for warning in report["warnings"]:
        click.echo(click.style(f"  warning: {warning}", fg="yellow"))
    sys.exit({"approved": 0, "unavailable": errors.ACCESS_UNAVAILABLE}.get(report["decision"], 1))


@access_group.command("log")
@click.option("-n", "--lines", default=20, show_default=True, help="How many of the newest decisions.")
@pass_instance
def access_log_command(instance, lines):
    """The newest decisions of the audit log (one JSON line each), oldest first.

    The whole log is audit/access.jsonl on the hub data volume.
    """
    said = stack_of(instance).access_log(lines)
    click.echo(said or "no decisions logged yet")


@main.group("secrets")
def secrets_group():
    """The secret files of this instance (HUBSTACK_SECRETS_DIR, default secrets/)."""


@secrets_group.command("init")
@pass_instance
def secrets_init_command(instance):
    """Create the cookie secret and the auth-state crypt key, mode 600.

    Run once before the first production start. Files that exist are kept,
    never overwritten: a new cookie secret would log everyone out and a new
    crypt key would lose the OAuth tokens the hub keeps. The OAuth client
    secret and registry secrets come from elsewhere: see secrets.example/.
    """
    folder, _ = instance.settings().folders(instance.project)
    for name, what in secrets.init(folder):
        click.echo(f"{what:<8} {folder / name}")
    click.echo("secrets are files, never .env: see secrets.example/ for the ones you provide")


@main.command("doctor")
@click.option("--dev", is_flag=True, help="Check for a dev-mode hub (DEV_MODE=1) instead of what .env says.")
@pass_instance
def doctor_command(instance, dev):
    """Check this host for running the hub: Docker, Compose, ports, disk,
    secrets, the certificate, the public name, memory.

    Prints one row per check with what to fix. Changes nothing.

    \b
    Exit codes: 0 nothing to fix (warnings may show), 1 a check failed.
    """
    rows = doctor.run_checks(instance, dev=dev)
    colour = {doctor.OK: "green", doctor.FAIL: "red"}
    for row in rows:
        status = click.style(f"{row.status:<5}", fg=colour.get(row.status, "yellow"), bold=True)
        click.echo(f"{status} {row.name:<18} {row.found}")
        if row.fix and row.status != doctor.OK:
            click.echo(f"      {'':<18} fix: {row.fix}")
    failed = [row.name for row in rows if row.status == doctor.FAIL]
    click.echo(f"{len(rows)} checks: " + (f"fix {', '.join(failed)}" if failed else "nothing to fix"))
    sys.exit(1 if failed else 0)


@main.command("serve")
@TIMEOUT
@pass_instance
def serve_command(instance, timeout):
    """Run the hub in the foreground: what the systemd unit runs.

    Builds what is missing, starts the hub, waits for /hub/health (then tells
    systemd READY=1), and watches the hub container: it exits 5 when the hub
    is gone and Docker does not bring it back, so that systemd starts it
    again. On SIGTERM (`systemctl stop`) or Ctrl-C it runs `hubstack down`:
    the hub and the user servers stop, no volume is removed.
    """
    service.serve(lambda: stack_of(instance, checked=True), lambda: stack_of(instance), timeout, echo=click.echo)


@main.group("service")
def service_group():
    """Start the hub at boot: a systemd unit for this instance."""


@service_group.command("install")
@DEV
@click.option("--no-start", is_flag=True, help="Write and enable the unit, but do not start it now.")
@click.option("--print", "print_only", is_flag=True, help="Print the unit and the environment file; change nothing.")
@pass_instance
def service_install_command(instance, dev, no_start, print_only):
    """Write, enable and start the systemd unit hubstack-<HUBSTACK_NAME>.service.

    The unit runs `hubstack serve` after Docker, restarts it on failure, and
    starts the hub at boot. Settings come from .env as always; the ones given
    in the environment now (HUBSTACK_*, DEV_MODE, ...) are kept in
    .hubstack/<name>.env, the unit's environment file. Builds what is
    missing first; returns when the hub answers. Run it again after changing
    settings: it rewrites the unit and restarts it if anything changed.
    """
    settings = instance.checked_settings(dev=dev)
    environ = {**os.environ, **({"DEV_MODE": "1"} if dev else {})}
    if print_only:
        click.echo(service.preview(settings, instance.project, environ), nl=False)
        return
    service.require_systemd()
    Stack(instance.project, settings).ensure_built()
    service.install(settings, instance.project, environ, start=not no_start, echo=click.echo)
    if not no_start:
        click.echo(
            click.style(
                f"hubstack {settings.name} runs as {service.unit_name(settings)}, enabled at boot: {settings.url}",
                fg="green",
            )
        )


@service_group.command("uninstall")
@pass_instance
def service_uninstall_command(instance):
    """Stop, disable and remove hubstack-<HUBSTACK_NAME>.service. Removes no volume."""
    service.uninstall(instance.settings(), instance.project, echo=click.echo)
