"""One instance's stack as a whole: build what is missing, start, wait, watch, stop, report.

The CLI's commands, `hubstack serve` (the systemd unit) and the benchmarks
all go through `Stack`; the CLI adds only click and formatting.
"""

import json
import time
import urllib.request
from datetime import datetime, timezone

import click
from docker.errors import DockerException

from . import compose, engine
from .build import Builder
from .common import datasets, egress, groups, profiles
from .common.contract import (
    DATA_MODE_FILE,
    HEALTH_PATH,
    HUB_DATA,
    LABEL_DATASETS,
    LABEL_PROFILE,
    LABEL_ROLE,
    LABEL_USER,
    Role,
)
from .common.https import acme_ca_root_file
from .common.parse import SettingsError
from .common.policy import check_data_mode, check_mode
from .common.settings import load
from .errors import EngineError, HubNotHealthy, HubstackError
from .images import IMAGES


class Instance:
    """The checkout and its settings, before anything talks to Docker."""

    def __init__(self, project_dir=None):
        self._project_dir = project_dir

    @property
    def project(self):
        return engine.find_project(self._project_dir)

    def settings(self, dev=False, environ=None):
        return load(environ=environ, dotenv_path=self.project / ".env", DEV_MODE="1" if dev else None)

    def checked_settings(self, dev=False, environ=None):
        """Settings that may start a hub: dev mode on loopback, or a complete production log-in."""
        settings = self.settings(dev=dev, environ=environ)
        login = check_mode(settings, *settings.folders(self.project))
        datasets.check_sources(catalogue(self.project, settings), login)
        access_dir, shown = settings.folders(self.project)[1], settings.raw["HUBSTACK_ACCESS_DIR"]
        profiles.load(access_dir, shown, settings.limits, groups.load(access_dir, shown))
        return settings


def catalogue(project, settings):
    """The checked datasets.toml of the instance, its folders looked at on this machine."""
    return datasets.load(settings.folders(project)[1], settings.raw["HUBSTACK_ACCESS_DIR"], check_folders=True)


def last_said(container, prefix):
    """The container's last line that starts with prefix (our entrypoints' errors), else its last line."""
    lines = [line for line in container.logs(tail=20).decode(errors="replace").splitlines() if line.strip()]
    return next((line for line in reversed(lines) if line.startswith(prefix)), lines[-1] if lines else "")


def restarts(container):
    """(id, restart count) of a container, to tell a restart after `up` from one long before."""
    return (container.id, container.attrs["RestartCount"]) if container is not None else (None, 0)


def exits_at_start(container, before):
    if container is None:
        return False
    baseline = before[1] if container.id == before[0] else 0
    return container.attrs["RestartCount"] > baseline or container.status == "exited"


class Stack:
    def __init__(self, project, settings, client=None, echo=click.echo):
        self.project, self.settings, self.echo = project, settings, echo
        self.names = settings.names
        self.client = client or engine.connect()

    # -- building -----------------------------------------------------------------
    def builder(self, echo=None):
        return Builder(self.client, self.settings, self.project, echo=echo or self.echo)

    def build(self, images=IMAGES, nocache=False, echo=None):
        """Build images; {step: seconds}."""
        return self.builder(echo).run(images=images, nocache=nocache)

    def ensure_built(self, echo=None):
        """Build everything if an image or the shared environment is missing; what was missing."""
        builder = self.builder(echo)
        missing = builder.missing()
        if missing:
            (echo or self.echo)(f"not built yet: {', '.join(missing)}; building")
            builder.run()
        return missing

    # -- containers ---------------------------------------------------------------
    @property
    def hub(self):
        return engine.container_or_none(self.client, self.names.hub_container)

    @property
    def egress(self):
        return engine.container_or_none(self.client, self.names.egress_container)

    @property
    def tls(self):
        return engine.container_or_none(self.client, self.names.tls_container)

    def running_hub(self):
        hub = self.hub
        if hub is None or hub.status != "running":
            raise HubNotHealthy(f"the hub {self.names.hub_container} is not running: start it with `hubstack up`")
        return hub

    def data_mode(self):
        """The mode the instance's hub data was made in ("dev", "production"), or None if not known yet."""
        read = ["sh", "-c", f"cat {DATA_MODE_FILE} 2>/dev/null || true"]
        hub = self.hub
        if hub is not None and hub.status == "running":
            said = hub.exec_run(read).output
        else:
            image = engine.image_or_none(self.client, self.names.image("hub"))
            if image is None:
                return None
            said = self.client.containers.run(
                image.id,
                read,
                remove=True,
                labels=self.names.labels(),
                volumes={self.names.hub_data_volume: {"bind": HUB_DATA, "mode": "ro"}},
            )
        return said.decode(errors="replace").strip() or None

    def runs_in_dev_mode(self):
        hub = self.hub
        return hub is not None and "DEV_MODE=1" in hub.attrs["Config"]["Env"]

    def ask_hub(self, module, *args):
        """Run `python3 -m module args...` in the running hub: the JSON document it printed last."""
        said = self.running_hub().exec_run(["python3", "-m", module, *args]).output.decode(errors="replace")
        try:
            return json.loads(said.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise HubstackError(f"the hub's {module} failed: {said[-300:]}") from None

    def access_check(self, email):
        """What every approval source says about email, asked by the running hub (its report, as data)."""
        report = self.ask_hub("hubstack_hub.access", "check", email)
        if "error" in report:
            raise SettingsError(report["error"])
        return report

    def access_log(self, lines):
        """The newest lines of the audit log, across its rotated files."""
        result = self.running_hub().exec_run(["python3", "-m", "hubstack_hub.access", "log", str(lines)])
        return result.output.decode(errors="replace").rstrip() if result.exit_code == 0 else ""

    def metrics(self):
        """The main figures of /hub/metrics, read in the running hub with the metrics token (as data)."""
        result = self.running_hub().exec_run(["python3", "-m", "hubstack_hub.metrics", "report"])
        said = result.output.decode(errors="replace")
        try:
            report = json.loads(said.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise HubstackError(f"the hub's metrics could not be read: {said[-300:]}") from None
        if report.get("fix") == "secrets":
            raise SettingsError(report["error"])
        if "error" in report:
            raise HubstackError(
                f"{report['error']}: restart the hub so that it reads the secrets folder again (`hubstack reset`)"
            )
        return report

    def compose(self, *args, capture=False):
        return compose.run(self.settings, self.project, *args, capture=capture)

    # -- starting and stopping --------------------------------------------------------
    def start(self, recreate=False):
        """Network, volumes and folders, then the hub (and the tls service) through Compose."""
        settings, project = self.settings, self.project
        engine.ensure_runtime(self.client, self.names, project)
        table = catalogue(project, settings)
        engine.bind_dataset_folders(self.client, self.names, table)
        datasets.check_volumes(table, self.names, lambda name: engine.volume_attributes(self.client, name))
        acme_ca_root_file(settings, project)  # a missing or wrong CA root stops here, before anything starts
        secrets_dir, access_dir = settings.folders(project)
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # else Docker makes them, owned by root
        access_dir.mkdir(parents=True, exist_ok=True)
        check_data_mode(self.data_mode(), settings)  # before the running hub is touched
        if not settings.tls.on and self.tls is not None:
            self.compose("rm", "--stop", "--force", "tls")  # HTTPS turned off: no terminator left behind
        if not settings.egress.closed and self.egress is not None:
            self.compose("rm", "--stop", "--force", "egress")  # egress open: no proxy left behind
        before = {"hub": restarts(self.hub), "tls": restarts(self.tls), "egress": restarts(self.egress)}
        if settings.egress.closed:  # the proxy first: servers the hub finds running need it
            self.compose("up", "--detach", "egress")
        self.compose("up", "--detach", *(["--force-recreate"] if recreate else []), "hub")
        if settings.tls.on:  # the tls service (Caddy), recreated only when its settings changed
            self.compose("up", "--detach", "tls")
        if settings.egress.closed:
            egress.reattach(self.client, self.names)  # either container may be new
        return before

    def datasets(self):
        """The declared datasets, each with who has it mounted now (the user servers' labels)."""
        mounted = {}
        for container in engine.user_containers(self.client, self.names):
            for name in filter(None, container.labels.get(LABEL_DATASETS, "").split(",")):
                mounted.setdefault(name, []).append(container.labels.get(LABEL_USER, "?"))
        return [
            {
                "name": d.name,
                "title": d.title,
                "source": d.source,
                "volume": d.volume_name(self.names),
                "mount": d.mount_point,
                "grant": d.grant,
                "key": d.key,
                "cloud_access": d.cloud_access,
                "mounted_by": sorted(mounted.get(d.name, [])),
            }
            for d in catalogue(self.project, self.settings).datasets
        ]

    def check_egress(self, before):
        """The egress proxy runs (servers of closed egress need it), or what it said when it stopped."""
        egress = self.egress
        if egress is None or exits_at_start(egress, before) or egress.status != "running":
            said = last_said(egress, "hubstack-egress:") if egress is not None else "no container"
            raise HubNotHealthy(f"the egress proxy is not running: {said}")

    def health(self):
        """'healthy', or what the hub's health URL said instead."""
        try:
            with urllib.request.urlopen(f"{self.settings.url}{HEALTH_PATH}", timeout=3) as response:
                return "healthy" if response.status == 200 else f"HTTP {response.status}"
        except OSError as err:
            return f"not answering ({getattr(err, 'reason', err)})"

    def wait_healthy(self, timeout, before=(None, 0)):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health() == "healthy":
                return
            hub = self.hub
            if exits_at_start(hub, before):
                raise HubNotHealthy(f"the hub exits at start: {last_said(hub, 'hubstack:')} (see `hubstack logs`)")
            time.sleep(0.5)
        raise HubNotHealthy(
            f"the hub did not answer {self.settings.url}{HEALTH_PATH} within {timeout} s: see `hubstack logs`"
        )

    def served_certificate(self):
        """(notAfter, days left) of the certificate the tls service serves; raises OSError/SSLError."""
        from .doctor import days_left, served_certificate

        cert = served_certificate(self.settings.local_host, self.settings.tls.https_port, self.settings.tls.domain)
        return cert["notAfter"], days_left(cert["notAfter"])

    def wait_tls(self, timeout, before=(None, 0)):
        """Wait for a served certificate; a terminator that exits at start is an error, a slow CA is not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                not_after, days = self.served_certificate()
                return (
                    f"certificate valid until {not_after} ({days:.0f} days)"
                    if days >= 2
                    else f"certificate valid until {not_after} ({days * 24:.0f} hours; renewed automatically)"
                )
            except OSError:
                pass
            tls = self.tls
            if exits_at_start(tls, before):
                said = last_said(tls, "hubstack-tls:")
                raise HubNotHealthy(f"the HTTPS terminator {self.names.tls_container} exits at start: {said[:300]}")
            time.sleep(0.5)
        return f"no certificate served yet (an ACME CA can take a minute): see `docker logs {self.names.tls_container}`"

    def up(self, timeout=180, recreate=False, echo=None):
        """Build what is missing, start, wait for health (and the certificate); a line about HTTPS or None."""
        if not recreate:
            self.ensure_built(echo)
        before = self.start(recreate=recreate)
        self.wait_healthy(timeout, before["hub"])
        if self.settings.egress.closed:
            self.check_egress(before["egress"])
        if self.settings.tls.on:
            return f"HTTPS ({self.settings.https}): {self.wait_tls(min(timeout, 60), before['tls'])}"
        return None

    def down(self):
        """Stop the hub and every user server; no volume is removed. The number of servers stopped."""
        self.compose("down")
        for sidecar in engine.instance_containers(self.client, self.names, Role.DATABASE_SIDECAR):
            try:  # MariaDB shuts down cleanly before its server's network goes
                sidecar.stop(timeout=10)
                sidecar.remove(force=True)
            except DockerException:
                pass  # gone already
        servers = engine.user_containers(self.client, self.names, all=True)
        for container in servers:
            container.stop(timeout=10)  # DockerSpawner's containers remove themselves on stop
        for network in engine.user_networks(self.client, self.names):
            engine.remove_quietly(network)  # closed egress: each server's own network, empty now
        return len(servers)

    def watch(self, poll=2.0, grace=10.0):
        """Return never; raise HubNotHealthy when the hub (or, with HTTPS on, its terminator) is gone
        and Docker does not bring it back.

        Docker restarts a container that crashes (restart: unless-stopped; state
        "restarting" meanwhile) but not one stopped by `docker kill`/`docker stop`.
        The grace covers Compose replacing the container (`hubstack reset`).
        """
        watched = {self.names.hub_container: "hub"}
        if self.settings.tls.on:
            watched[self.names.tls_container] = "HTTPS terminator"
        gone_since = {}
        while True:
            for name, role in watched.items():
                try:
                    container = engine.container_or_none(self.client, name)
                except (DockerException, OSError) as err:
                    raise EngineError(f"lost the Docker engine while watching the hub: {str(err)[:160]}") from None
                if container is not None and container.status in ("running", "restarting", "paused"):
                    gone_since.pop(name, None)
                elif name not in gone_since:
                    gone_since[name] = time.monotonic()
                elif time.monotonic() - gone_since[name] >= grace:
                    what = (
                        "is gone"
                        if container is None
                        else f"is {container.status} (exit code {container.attrs['State']['ExitCode']})"
                    )
                    raise HubNotHealthy(f"the {role} container {name} {what} and Docker did not restart it")
            time.sleep(poll)

    # -- what is there ----------------------------------------------------------------
    def status(self):
        """Health, HTTPS, user servers, volumes and images of this instance, as data."""
        settings = self.settings
        servers = [
            {
                "name": c.name,
                "user": c.labels.get(LABEL_USER, ""),
                "status": c.status,
                "profile": c.labels.get(LABEL_PROFILE, ""),
            }
            for c in engine.user_containers(self.client, self.names)
        ]
        volumes = [
            {"name": v.name, "role": (v.attrs["Labels"] or {}).get(LABEL_ROLE, "")}
            for v in engine.instance_volumes(self.client, self.names)
        ]
        images = []
        for image_name in [self.names.image(i.role) for i in IMAGES]:
            image = engine.image_or_none(self.client, image_name)
            images.append(
                {
                    "name": image_name,
                    "age": age(image.attrs["Created"]) if image else "missing",
                    "size_mb": round(image.attrs["Size"] / 1e6) if image else 0,
                }
            )
        https = {"mode": settings.https, "url": settings.public_url}
        if settings.tls.on:
            tls = self.tls
            https["terminator"] = tls.status if tls is not None else "not running"
            try:
                not_after, days = self.served_certificate()
                https["certificate"] = {"not_after": not_after, "days_left": round(days, 1)}
            except OSError as err:
                https["certificate"] = {"error": str(err)[:200]}
        egress_report = {"mode": settings.egress.mode, "allow": list(settings.egress.allow)}
        if settings.egress.closed:
            proxy = self.egress
            egress_report["proxy"] = proxy.status if proxy is not None else "not running"
            egress_report["user_networks"] = len(engine.user_networks(self.client, self.names))
        return {
            "instance": settings.name,
            "url": settings.url,
            "hub": self.health(),
            "https": https,
            "egress": egress_report,
            "servers": servers,
            "volumes": volumes,
            "images": images,
        }


def age(created):
    when = datetime.fromisoformat(created[:19]).replace(tzinfo=timezone.utc)
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
