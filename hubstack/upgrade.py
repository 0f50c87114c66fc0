"""`hubstack upgrade`: a backup, the images of this checkout, the hub's database schema, the hub again.

JupyterHub's own upgrade guide, as steps: back up, install the new version,
`jupyterhub upgrade-db`, start. Researchers' servers are left running
(the hub keeps them: `cleanup_servers` is off) and the new hub finds them;
they get the new images at their next start.
"""

import json
import time

import click

from . import engine
from .backup import Backups
from .common.contract import ENV_RECIPE, HUB_DATA, HUB_DATABASE, HUB_SERVICE, Role
from .errors import HubstackError
from .images import IMAGES

# Every Python environment's packages, then Debian's, of one image: "name==version" lines.
# The environment image holds the lock its volume is filled from (exactly that: --no-deps).
PACKAGES_SCRIPT = (
    'for py in /opt/*/bin/python3; do [ -x "$py" ] && "$py" -c \''
    "import importlib.metadata as m\n"
    'for d in m.distributions(): print(d.metadata["Name"].lower() + "==" + d.version)\'; done; '
    f"cat {ENV_RECIPE}/requirements.lock 2>/dev/null; "
    "dpkg-query -W -f '${Package}==${Version}\\n' 2>/dev/null; true"
)
EMPTY_CONFIG = "/tmp/upgrade_db_config.py"
SCHEMA_SCRIPT = (
    "import json, sqlite3\n"
    "try:\n"
    f"    db = sqlite3.connect('file:{HUB_DATABASE}?mode=ro', uri=True)\n"
    "    print(json.dumps(db.execute('select version_num from alembic_version').fetchone()[0]))\n"
    "except Exception:\n"
    "    print(json.dumps(None))\n"
)


def package_changes(before, after):
    """'name a -> b' for each package whose version changed, was added or removed (sorted by name)."""
    names = sorted(set(before) | set(after))
    return [
        f"{n} {before.get(n, '(new)')} -> {after.get(n, '(removed)')}" for n in names if before.get(n) != after.get(n)
    ]


def parse_packages(text):
    packages = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name:
            packages[name] = version
    return packages


class Upgrade:
    def __init__(self, stack, echo=click.echo):
        self.stack, self.client, self.names, self.echo = stack, stack.client, stack.names, echo

    def image_ids(self):
        """{role: image id or None} of the instance's images."""
        return {
            image.role: getattr(engine.image_or_none(self.client, self.names.image(image.role)), "id", None)
            for image in IMAGES
        }

    def run_in(self, image, argv, volumes=None):
        return (
            self.client.containers.run(
                image,
                argv,
                entrypoint=[],
                remove=True,
                network_mode="none",
                labels=self.names.labels(),
                volumes=volumes or {},
            )
            .decode(errors="replace")
            .strip()
        )

    def packages(self, image_id):
        return parse_packages(self.run_in(image_id, ["sh", "-c", PACKAGES_SCRIPT])) if image_id else {}

    def schema(self, image_id):
        """The hub database's Alembic revision (None: no database yet), read with the hub's image."""
        volume = {self.names.hub_data_volume: {"bind": HUB_DATA, "mode": "ro"}}
        return json.loads(self.run_in(image_id, ["python3", "-c", SCHEMA_SCRIPT], volume).splitlines()[-1])

    def upgrade_db(self, image_id):
        """`jupyterhub upgrade-db` of the new hub image on the hub's data volume (JupyterHub copies an
        SQLite database to jupyterhub.sqlite.<time> before it migrates); what it said."""
        # Only the database URL matters to upgrade-db: an empty config file, not the hub's own (which
        # needs every setting and secret of a running hub).
        argv = [
            "sh",
            "-c",
            f"touch {EMPTY_CONFIG} && exec jupyterhub upgrade-db --db=sqlite:///{HUB_DATABASE} -f {EMPTY_CONFIG}",
        ]
        container = self.client.containers.run(
            image_id,
            argv,
            entrypoint=[],
            detach=True,
            network_mode="none",
            working_dir=HUB_DATA,
            labels=self.names.labels(),
            volumes={self.names.hub_data_volume: {"bind": HUB_DATA, "mode": "rw"}},
        )
        try:
            code = container.wait(timeout=600)["StatusCode"]
            said = container.logs().decode(errors="replace").strip()
        finally:
            container.remove(force=True)
        if code != 0:
            raise HubstackError(
                f"`jupyterhub upgrade-db` failed ({said.splitlines()[-1] if said else f'exit {code}'}); the hub is "
                "stopped and its database as it was: restore the backup just made, or fix and run upgrade again"
            )
        return said

    def run(self, backup=True, timeout=180):
        """Back up, build, upgrade the database, restart the hub; the report (as data)."""
        stack, started = self.stack, time.monotonic()
        report = {"instance": self.names.instance, "backup": None, "images": {}}
        if backup:
            report["backup"] = Backups(stack, echo=self.echo).backup()["run"]
        before = self.image_ids()
        hub_before = stack.hub
        servers = [c.name for c in engine.user_containers(self.client, self.names)]
        stack.build()
        after = self.image_ids()
        for role in before:
            changes = (
                # An image the build replaced stays on the engine, untagged: read after the build,
                # and only for the images that changed.
                package_changes(self.packages(before[role]), self.packages(after[role]))
                if before[role] != after[role]
                else []
            )
            report["images"][role] = {"before": before[role], "after": after[role], "packages": changes}
        hub_changed = (
            before[Role.HUB] != after[Role.HUB] or hub_before is None or hub_before.image.id != after[Role.HUB]
        )
        schema_before = self.schema(after[Role.HUB])
        stopped = time.monotonic()
        if hub_changed:
            if hub_before is not None:
                self.echo(f"stopping the hub {self.names.hub_container} ({len(servers)} server(s) keep running)")
                stack.compose("stop", HUB_SERVICE)
            if schema_before is not None:
                self.echo("==> jupyterhub upgrade-db")
                said = self.upgrade_db(after[Role.HUB])
                self.echo("\n".join(f"    {line}" for line in said.splitlines()[-5:]))
        report["schema"] = {"before": schema_before, "after": self.schema(after[Role.HUB])}
        report["https"] = stack.up(timeout=timeout)
        report["hub_down_seconds"] = time.monotonic() - stopped if hub_changed else 0.0
        report["servers_kept"] = [
            c.name for c in engine.user_containers(self.client, self.names) if c.name in set(servers)
        ]
        report["hub_restarted"] = hub_changed
        report["seconds"] = time.monotonic() - started
        return report


def describe(report, short=lambda i: i.split(":")[-1][:12] if i else "none"):
    """The lines `hubstack upgrade` prints of its report."""
    lines = []
    for role, image in report["images"].items():
        if image["before"] == image["after"]:
            lines.append(f"{role}: unchanged ({short(image['after'])})")
            continue
        lines.append(f"{role}: {short(image['before'])} -> {short(image['after'])}")
        lines.extend(f"    {change}" for change in image["packages"][:40])
        if len(image["packages"]) > 40:
            lines.append(f"    ... and {len(image['packages']) - 40} more")
        if not image["packages"]:
            lines.append("    (no package version changed: hubstack's own files did)")
    schema = report["schema"]
    if schema["before"] == schema["after"]:
        lines.append(f"hub database schema: {schema['after'] or 'no database yet'} (nothing to migrate)")
    else:
        lines.append(
            f"hub database schema: {schema['before']} -> {schema['after']} (a copy of the old one is beside it)"
        )
    lines.append(
        f"the hub was down {report['hub_down_seconds']:.1f} s; {len(report['servers_kept'])} running server(s) kept, "
        "they get the new images at their next start"
        if report["hub_restarted"]
        else "the hub image is unchanged: the hub was not restarted"
    )
    return lines
