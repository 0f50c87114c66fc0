"""hubstack: build, start and look after a JupyterHub for controlled-access data.

Only click and formatting live here: what each command does is in
hubstack.stack (the stack as a whole), hubstack.build, hubstack.doctor,
hubstack.service and hubstack/users.py; exit codes are hubstack.errors.EXIT_CODES.
"""

import json
import os
import subprocess
import sys
import textwrap

import click

from . import doctor, errors, metrics, restic, secrets, service
from .backup import Backups, check_ready
from .common.contract import HUB_HOME, METRICS_TOKEN
from .common.parse import SettingsError
from .images import IMAGES, PYTHON
from .restore import Restore
from .stack import Instance, Stack, age
from .upgrade import Upgrade, describe
from .users import Users, approval_cell, human_size, servers_cell


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
    stack_of(instance).build(images=(PYTHON, *IMAGES) if no_cache else IMAGES, nocache=no_cache)


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
    out = report["egress"]
    if out["mode"] == "closed":
        allowed = ", ".join(out["allow"]) or "nothing"
        click.echo(
            f"egress closed: user servers reach the hub and, through the proxy ({out['proxy']}), {allowed}; "
            f"{out['user_networks']} user network(s)"
        )
    else:
        click.echo("egress open: user servers reach the internet" + (" (dev mode)" if settings.dev_mode else ""))
    click.echo(f"user servers running: {len(report['servers'])}")
    for s in report["servers"]:
        click.echo(f"  {s['name']:<48} {s['user']:<32} {s['status']:<8} profile {s['profile'] or '-'}")
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


@main.command("upgrade")
@click.option("--dev", is_flag=True, help="Development mode; kept anyway if the running hub is in it.")
@click.option("--no-backup", is_flag=True, help="Do not back up first (only if you have a backup of this very moment).")
@TIMEOUT
@pass_instance
def upgrade_command(instance, dev, no_backup, timeout):
    """Upgrade the instance to this checkout: back up, rebuild, upgrade the database, restart the hub.

    \b
    After `git pull` (or unpacking a new release) in the checkout:
        hubstack upgrade
    Steps: `hubstack backup` (HUBSTACK_BACKUP_REPOSITORY must be set; see
    `hubstack backup --help`), `hubstack build`, then, if the hub image
    changed, the hub is stopped, `jupyterhub upgrade-db` of the new image
    migrates its database (JupyterHub keeps a copy of the old file beside
    it) and the hub starts again. Researchers' servers keep running and
    their kernels with them; they get the new images at their next start.
    Prints each image's package versions before and after.
    """
    dev = dev or stack_of(instance).runs_in_dev_mode()
    stack = stack_of(instance, dev=dev, checked=True)
    if not no_backup:
        try:  # before anything changes: the backup must be possible
            check_ready(stack.settings, instance.project)
        except SettingsError as err:
            raise SettingsError(
                f"{err}; or, with a backup of this very moment, `hubstack upgrade --no-backup`"
            ) from None
    report = Upgrade(stack).run(backup=not no_backup, timeout=timeout)
    for line in describe(report):
        click.echo(line)
    says_up(stack, report["https"], verb=f"upgraded in {report['seconds']:.0f} s", url=stack.settings.url)


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
    if report["datasets"]:
        click.echo("datasets:")
    for row in report["datasets"]:
        colour = {"approved": "green", "unavailable": "yellow", "unknown": None}.get(row["outcome"], "red")
        click.echo(
            f"  {row['dataset']:<20} {row['grant']:<9} "
            + click.style(f"{row['outcome']:<12}", fg=colour)
            + row["reason"]
        )
    for warning in report["warnings"]:
        click.echo(click.style(f"  warning: {warning}", fg="yellow"))
    sys.exit({"approved": 0, "unavailable": errors.ACCESS_UNAVAILABLE}.get(report["decision"], 1))


@main.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@pass_instance
def datasets_command(instance, as_json):
    """The datasets in access/datasets.toml, and who has each mounted now.

    Checks the file as `hubstack up` does (a bad line stops here, with what to
    fix). A dataset is mounted read-only at /data/NAME in the servers of the
    researchers its grant approves, decided at each start; see README.md,
    'Datasets'.
    """
    rows = stack_of(instance).datasets()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no datasets: declare them in access/datasets.toml (README.md, 'Datasets')")
    for row in rows:
        grant = row["grant"] + (f" {row['key']}" if row["key"] else "") + (" +cloud" if row["cloud_access"] else "")
        users = ", ".join(row["mounted_by"]) or "nobody"
        click.echo(f"{row['name']:<20} {grant:<28} {row['source']}")
        click.echo(f"  {row['title']}; mounted now by: {users}")


@main.group("users", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.pass_context
def users_group(ctx, as_json):
    """The hub's users: their servers, last activity, home size and approval.

    \b
    hubstack users                        every user of the hub
    hubstack users orphans                volumes whose user is no longer in the hub
    hubstack users delete NAME            delete NAME from the hub; their home stays
    hubstack users delete NAME --purge    ... and remove their home, once you type NAME

    Approval is what the access check last decided about them (from the audit
    log; "none logged" if it has rotated away), "dev" in dev mode. Asks the
    running hub, through its API; home sizes come from `du` in a throwaway
    container that mounts the volumes read-only.
    """
    if ctx.invoked_subcommand is not None:
        return
    rows = Users(stack_of(ctx.find_object(Instance))).listing()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no users yet")
        return
    click.echo(f"{'USER':<32} {'SERVER':<20} {'LAST ACTIVITY':<14} {'HOME':>9}  APPROVAL")
    for user in rows:
        seen = f"{age(user['last_activity'])} ago" if user["last_activity"] else "never"
        click.echo(
            f"{user['name']:<32} {servers_cell(user['servers']):<20} {seen:<14} "
            f"{human_size(user['home_bytes']) if user['volumes'] else 'none':>9}  {approval_cell(user['approval'], age)}"
        )


@users_group.command("orphans")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@pass_instance
def users_orphans_command(instance, as_json):
    """Volumes of users no longer in the hub (deleted, here or on the admin page).

    Deleting a user keeps their home: it stays here until
    `hubstack users delete NAME --purge`.
    """
    rows = Users(stack_of(instance)).orphans()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no orphaned volumes")
    for v in rows:
        created = f"created {age(v['created'])} ago" if v["created"] else ""
        click.echo(f"{v['name']:<48} {v['user']:<32} {human_size(v['bytes']):>9}  {created}")


@users_group.command("delete")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also remove their home and every volume of theirs, for ever.")
@click.option(
    "--yes-delete-data-of",
    "typed",
    metavar="NAME",
    help="With --purge, in scripts: the user's name again, instead of typing it at the prompt.",
)
@pass_instance
def users_delete_command(instance, name, purge, typed):
    """Stop NAME's servers and delete NAME from the hub. Their home stays.

    \b
    Without --purge nothing of their data is removed: their volumes become
    orphans (`hubstack users orphans`), and a new log-in as NAME gets them back.
    With --purge their home and every other volume labelled with exactly NAME
    are removed too, after you type NAME at the prompt (or give it again as
    --yes-delete-data-of NAME); anything else removes nothing and exits 2.
    --purge also works for a user already gone from the hub. Every deletion
    is a line of the audit log (`hubstack access log`).
    """
    if typed is not None and not purge:
        raise errors.NotConfirmed("--yes-delete-data-of goes with --purge: nothing was deleted")

    def confirm(in_hub, volumes):
        if typed is not None:
            return typed
        where = "delete them from the hub and " if in_hub else ""
        click.echo(f"This will {where}remove {len(volumes)} volume(s) of {name}, for ever:")
        for v in volumes:
            click.echo(f"  {v['name']:<48} {v['role']:<8} {human_size(v['bytes']):>9}")
        try:
            return click.prompt(f"Type the user's name ({name}) to go on", default="", show_default=False)
        except click.Abort:
            return ""

    done = Users(stack_of(instance)).delete(name, purge=purge, confirm=confirm)
    if done["deleted_from_hub"]:
        stopped = ", ".join(s or "default" for s in done["stopped"]) or "none running"
        click.echo(f"deleted {name} from the hub (servers stopped: {stopped})")
    if done["kept"]:
        click.echo(f"kept {len(done['kept'])} volume(s): {', '.join(done['kept'])} (see `hubstack users orphans`)")
    if purge:
        click.echo(f"removed {len(done['removed'])} volume(s) of {name}: {', '.join(done['removed']) or 'none'}")


@access_group.command("log")
@click.option("-n", "--lines", default=20, show_default=True, help="How many of the newest decisions.")
@pass_instance
def access_log_command(instance, lines):
    """The newest decisions of the audit log (one JSON line each), oldest first.

    The whole log is audit/access.jsonl on the hub data volume.
    """
    said = stack_of(instance).access_log(lines)
    click.echo(said or "no decisions logged yet")


@main.command("metrics")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option("--scrape-config", is_flag=True, help="Print a Prometheus scrape job for this hub instead.")
@click.option(
    "--on-network",
    is_flag=True,
    help="With --scrape-config: for a Prometheus container on the instance's network (scrapes the hub directly).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="With --scrape-config: where Prometheus reads the token (default: the file in the secrets folder).",
)
@pass_instance
def metrics_command(instance, as_json, scrape_config, on_network, token_file):
    """What the hub and each researcher's server use now, from the hub's /hub/metrics.

    JupyterHub's Prometheus metrics (running servers, users active in the last
    24h, 7d and 30d, spawn times, ...) with each user server's CPU seconds and
    memory, and each home volume's size. They are read with the metrics token,
    secrets/metrics_token (made by `hubstack secrets init`, read by the hub at
    start), which opens /hub/metrics and nothing else.

    \b
    To follow them over time, give Prometheus the scrape job that
        hubstack metrics --scrape-config
    prints, and import the activity dashboard of jupyterhub/grafana-dashboards
    into Grafana (README.md, 'Metrics').
    """
    settings = instance.settings()
    if scrape_config:
        token = token_file or (settings.folders(instance.project)[0] / METRICS_TOKEN).resolve()
        click.echo(metrics.scrape_config(settings, token, on_network=on_network), nl=False)
        if not token_file and not token.is_file():
            click.echo(f"hubstack: {token} does not exist yet: run `hubstack secrets init`", err=True)
        return
    report = stack_of(instance).metrics()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in metrics.lines(settings.name, report):
        click.echo(line)


@main.group("secrets")
def secrets_group():
    """The secret files of this instance (HUBSTACK_SECRETS_DIR, default secrets/)."""


@secrets_group.command("init")
@pass_instance
def secrets_init_command(instance):
    """Create the cookie secret, the auth-state crypt key and the metrics token, mode 600.

    Run once before the first production start. Files that exist are kept,
    never overwritten: a new cookie secret would log everyone out and a new
    crypt key would lose the OAuth tokens the hub keeps. To replace the
    metrics token, remove its file, run this and restart the hub: the old
    token stops working. The OAuth client secret and registry secrets come
    from elsewhere: see secrets.example/.
    """
    folder, _ = instance.settings().folders(instance.project)
    for name, what in secrets.init(folder):
        click.echo(f"{what:<8} {folder / name}")
    click.echo("secrets are files, never .env: see secrets.example/ for the ones you provide")


def backups_of(instance, password=True):
    settings = instance.settings()
    check_ready(settings, instance.project, password)  # a missing setting or password: one line, before the engine
    return Backups(Stack(instance.project, settings))


@main.group("backup", invoke_without_command=True)
@click.option(
    "--check",
    is_flag=True,
    help="Verify the repository instead of backing up: its structure, then every stored byte read back.",
)
@click.option(
    "--with-secrets",
    is_flag=True,
    help="Also back up the secrets folder (cookie secret, crypt key, OAuth and registry secrets), "
    "never the backup password.",
)
@click.pass_context
def backup_group(ctx, check, with_secrets):
    """Back up the hub and every researcher's home with restic, while they work.

    \b
    Once: name the repository in .env, a folder (better on another disk) or a
    restic URL, then make its password and the repository:
        HUBSTACK_BACKUP_REPOSITORY=/srv/backups/hub
        hubstack backup init
    Then, e.g. nightly from cron or a systemd timer:
        hubstack backup

    What goes in: the hub's database (SQLite's online backup, a consistent
    copy while the hub writes), the audit log, the checkout's .env and access/
    (approvals, datasets.toml), and each home volume. A running server is read
    once while it works, then paused for a second pass over what changed, so
    that its home is saved as it was at one moment; every pause is printed.
    Snapshots are encrypted, deduplicated and incremental; afterwards the
    ones HUBSTACK_BACKUP_KEEP does not keep are removed. `hubstack restore`
    brings them back.
    """
    if ctx.invoked_subcommand:
        if check or with_secrets:
            raise click.UsageError("--check and --with-secrets go with `hubstack backup` alone")
        return
    backups = backups_of(ctx.find_object(Instance))
    if check:
        backups.check()
        click.echo(click.style(f"the repository at {backups.config.shown} has no errors", fg="green"))
        return
    backups.backup(with_secrets=with_secrets)


@backup_group.command("init")
@pass_instance
def backup_init_command(instance):
    """Make the repository's password (secrets/backup_password) and the repository.

    Keeps both when they exist. Keep a copy of the password away from this
    host: without it no backup can be read.
    """
    backups = backups_of(instance, password=False)
    for what, done in backups.init():
        click.echo(f"{done:<8} {what}")
    click.echo(
        click.style(
            f"keep a copy of {backups.password_shown} somewhere else (a password manager): "
            "without it the backups cannot be read, on this host or another",
            fg="yellow",
        )
    )


@backup_group.command("list")
@pass_instance
def backup_list_command(instance):
    """The runs of this instance in the repository, newest first, with whose homes each holds."""
    backups = backups_of(instance)
    runs, others, stats = backups.list()
    if not runs:
        click.echo(f"no backup of {backups.names.instance} yet")
    for run, hub, users in runs:
        hub_text = f"hub {hub}" if hub else "no hub snapshot: did not finish"
        click.echo(f"{run}  {hub_text}, {len(users)} homes")
        if users:
            click.echo(textwrap.fill(", ".join(users), width=100, initial_indent="    ", subsequent_indent="    "))
    if others:
        click.echo(f"also in the repository: {', '.join(others)} (restore with --from NAME)")
    click.echo(
        f"the repository holds {restic.size(stats.get('total_size', 0))} in {stats.get('snapshots_count', 0)} snapshots"
    )


@main.command("restore")
@click.option("--user", metavar="NAME", help="Restore only this researcher's home; their server must be stopped.")
@click.option(
    "--snapshot", metavar="RUN|ID", help="Take this run (or the run of this snapshot id) instead of the newest."
)
@click.option(
    "--from", "source", metavar="INSTANCE", help="Take the backups of this HUBSTACK_NAME (default: this instance's)."
)
@click.option("--overwrite", is_flag=True, help="Write over volumes that hold files (no other file is removed).")
@click.option("--revoke-tokens", is_flag=True, help="Drop the API tokens researchers made (by default they come back).")
@pass_instance
def restore_command(instance, user, snapshot, source, overwrite, revoke_tokens):
    """Bring back this instance, or one researcher's home, from `hubstack backup`.

    \b
    All of it, onto a fresh instance or a fresh host (the checkout, .env with
    HUBSTACK_BACKUP_REPOSITORY, and the password file you kept):
        hubstack down && hubstack restore && hubstack up
    The hub's database (users, their named servers and tokens), its audit
    log, and every home, from the newest complete run; the backup's .env,
    access/ and secrets/ where the checkout has no such file.
    One home, while everyone else works (stop that server first):
        hubstack restore --user jane.doe@example.org

    A volume that holds files is written over only with --overwrite; nothing
    else is ever removed.
    """
    Restore(backups_of(instance)).run(
        user=user.strip().lower() if user else None,
        snapshot=snapshot,
        source=source,
        overwrite=overwrite,
        revoke_tokens=revoke_tokens,
    )


@main.command("doctor")
@click.option("--dev", is_flag=True, help="Check for a dev-mode hub (DEV_MODE=1) instead of what .env says.")
@pass_instance
def doctor_command(instance, dev):
    """Check this host for running the hub: Docker, Compose, ports, disk,
    secrets, the certificate, the public name, memory, the audit log,
    datasets, and that closed egress is in force.

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
