"""`hubstack doctor`: is this host ready to run (or still running) the hub well?

Each check returns one row: what was checked, ok / warn / fail, what was
found, and what to do about it. Checks only look; they change nothing (the
egress check runs a throwaway container on a throwaway network, and removes both).
"""

import errno
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker.types

from . import compose, engine
from .common.contract import AUDIT_FAILED, TLS_CHAIN, TLS_FOLDER, USER_UID, Role
from .common.disk import gib
from .common.egress import free_subnet, network_options
from .common.parse import SettingsError
from .errors import ComposeError, EngineError

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_ENGINE = (20, 10)
DISK_WARN_GB, DISK_FAIL_GB = 20, 5
CERT_WARN_DAYS, CERT_FAIL_DAYS = 20, 3


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    found: str
    fix: str = ""


# -- the checks -------------------------------------------------------------------
def docker_engine():
    try:
        client = engine.connect()
    except EngineError as err:
        return Check("Docker engine", FAIL, "not reachable", str(err).split(": ", 1)[-1]), None
    version = client.version().get("Version", "?")
    numbers = tuple(int(p) for p in version.split("+")[0].split(".")[:2] if p.isdigit())
    if numbers < MIN_ENGINE:
        return Check("Docker engine", FAIL, version, "install Docker Engine 20.10 or newer"), client
    return Check("Docker engine", OK, f"{version}, {client.info().get('Driver', '?')} storage"), client


def compose_tool():
    try:
        command = compose.command()
    except ComposeError as err:
        return Check("Compose", FAIL, "not installed", str(err).split(": ", 1)[-1])
    result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True)
    return Check("Compose", OK, f"{' '.join(command)} {result.stdout.strip() or '(version unknown)'}")


def port_free(name, bind, port, own_container=None):
    """A port the stack publishes: free, or already ours."""
    if own_container is not None and own_container.status == "running":
        published = own_container.attrs["NetworkSettings"]["Ports"] or {}
        if any(str(port) == b.get("HostPort") for bindings in published.values() for b in (bindings or [])):
            return Check(name, OK, f"{bind}:{port} is published by {own_container.name}")
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((bind, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return Check(
                    name,
                    FAIL,
                    f"{bind}:{port} is in use by another program",
                    "stop that program or choose another port in .env",
                )
            if err.errno == errno.EACCES:
                return Check(
                    name, WARN, f"{bind}:{port} needs root to bind here", "run the hub as root (the Docker engine does)"
                )
            return Check(
                name, FAIL, f"{bind}:{port}: {err.strerror}", "use an address of this machine in HUBSTACK_BIND"
            )
    return Check(name, OK, f"{bind}:{port} is free")


def disk_space(path, label):
    try:
        free_gb = shutil.disk_usage(path).free / 1e9
    except OSError as err:
        return Check(f"disk ({label})", WARN, f"{path}: {err.strerror}", "check the Docker data folder")
    found = f"{free_gb:.1f} GB free at {path}"
    if free_gb < DISK_FAIL_GB:
        return Check(
            f"disk ({label})", FAIL, found, f"free space: images and user homes need {DISK_WARN_GB} GB or more"
        )
    if free_gb < DISK_WARN_GB:
        return Check(f"disk ({label})", WARN, found, f"{DISK_WARN_GB} GB or more leaves room for users' homes")
    return Check(f"disk ({label})", OK, found)


def docker_disk(path, policy):
    """Docker's disk, where homes, layers and the hub's database and audit log all live: free space
    against HUBSTACK_MIN_FREE_DISK, under which the hub refuses new servers."""
    try:
        usage = shutil.disk_usage(path)
    except OSError as err:
        return Check("disk (Docker data)", WARN, f"{path}: {err.strerror}", "run as root to see Docker's data folder")
    floor = policy.floor(usage.total)
    found = f"{gib(usage.free)} free of {gib(usage.total)} at {path}; new servers refused under {policy.threshold}"
    if policy.shortfall(usage.free, usage.total):
        return Check(
            "disk (Docker data)",
            FAIL,
            "LOW: " + found,
            "the hub refuses new servers now: free space (`docker system df`, old images), or lower HUBSTACK_MIN_FREE_DISK",
        )
    if policy.shortfall(usage.free, usage.total, new_home=True) or usage.free < floor + DISK_WARN_GB * 1e9:
        return Check("disk (Docker data)", WARN, found, "little room for new homes: free space or add disk")
    return Check("disk (Docker data)", OK, found)


def home_quota(client, settings, loop_control="/dev/loop-control"):
    """HUBSTACK_HOME_QUOTA: on where researchers are strangers to each other, and the host can attach loop devices."""
    quota = settings.disk.home_quota
    volume = engine.volume_attributes(client, settings.names.home_disks_volume) if client else None
    if quota is None and volume is not None:
        return Check(
            "home quota",
            FAIL,
            f"off, but homes live in {settings.names.home_disks_volume} since a quota was on",
            "set HUBSTACK_HOME_QUOTA again: without it researchers get their homes from before the quota",
        )
    if quota is None:
        if settings.dev_mode:
            return Check("home quota", OK, "off (dev mode)")
        return Check(
            "home quota", WARN, "off: one researcher can fill Docker's disk", "set HUBSTACK_HOME_QUOTA, e.g. 10G"
        )
    found = f"{gib(quota)} per home"
    if not os.path.exists(loop_control):
        return Check(
            "home quota", FAIL, found + ", but this host has no loop devices", "load the module: modprobe loop"
        )
    folder = Path(volume["Mountpoint"]) if volume else None
    try:
        if folder is not None and folder.is_dir():
            images = list(folder.glob("*.ext4"))
            found += f"; {len(images)} home(s) reserve {gib(sum(i.stat().st_size for i in images))}"
    except OSError:
        pass  # not root: the volume's folder is Docker's
    return Check("home quota", OK, found)


def secret_files(folder, shown):
    """Every file in the secrets folder is private (mode 600 or stricter)."""
    folder = Path(folder)
    if not folder.is_dir():
        return Check("secrets", WARN, f"{shown}/ does not exist", "run `hubstack secrets init` (production needs it)")
    loose = [
        str(p.relative_to(folder))
        for p in sorted([*folder.iterdir(), *(folder / TLS_FOLDER).glob("*")])
        if p.is_file()
        and not p.name.startswith(".")
        and p.name != "README.md"
        and stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    if loose:
        return Check(
            "secrets",
            FAIL,
            f"readable by others: {', '.join(loose)}",
            f"chmod 600 {' '.join(f'{shown}/{n}' for n in loose)}",
        )
    count = sum(1 for p in folder.iterdir() if p.is_file() and p.name != "README.md")
    return Check("secrets", OK, f"{count} file(s) in {shown}/, all private")


def configuration(instance, dev):
    try:
        settings = instance.checked_settings(dev=dev)
    except SettingsError as err:
        return Check("configuration", FAIL, "refused", str(err)), None
    mode = "dev mode" if settings.dev_mode else "production"
    return Check("configuration", OK, f"{mode}, instance {settings.name}"), settings


def days_left(not_after):
    return (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400


def decode_pem(path):
    """The first certificate of a PEM file, as the ssl module decodes it (subject, notAfter, ...)."""
    return ssl._ssl._test_decode_cert(str(path))


def served_certificate(host, port, server_name):
    """The certificate served at host:port for server_name (not verified: we only read its dates)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
        pem.write(ssl.DER_cert_to_PEM_cert(der))
        pem.flush()
        return decode_pem(pem.name)


def certificate(cert, where, renews_itself=False):
    """A certificate's expiry. renews_itself: Caddy's own short-lived local certificates
    (self-signed mode: 12 hours, renewed by Caddy), which are fine until they have run out."""
    left = days_left(cert["notAfter"])
    found = f"{where}: expires {cert['notAfter']} ({left:.0f} days)"
    if renews_itself:
        if left <= 0:
            return Check("certificate", FAIL, found, "Caddy did not renew it: see `docker logs` of the tls container")
        return Check("certificate", OK, f"{found}; Caddy renews it by itself")
    if left < CERT_FAIL_DAYS:
        return Check(
            "certificate", FAIL, found, "renew it now (files mode: replace the files; acme: see `hubstack logs`)"
        )
    if left < CERT_WARN_DAYS:
        return Check("certificate", WARN, found, "renewal is due: check that it happens")
    return Check("certificate", OK, found)


def https_certificate(settings, secrets_dir, shown):
    if not settings.tls.on:
        where = "on loopback, behind your own TLS terminator" if settings.loopback_bind else "on a public address"
        status = OK if settings.loopback_bind or settings.dev_mode else FAIL
        return Check(
            "certificate",
            status,
            f"HTTPS off, hub {where}",
            "" if status == OK else "set HUBSTACK_HTTPS (acme, files or self-signed)",
        )
    if settings.https == "files":
        path = Path(secrets_dir) / TLS_FOLDER / TLS_CHAIN
        try:
            return certificate(decode_pem(path), f"{shown}/{TLS_FOLDER}/{TLS_CHAIN}")
        except (OSError, ssl.SSLError) as err:
            return Check(
                "certificate",
                FAIL,
                f"{shown}/{TLS_FOLDER}/{TLS_CHAIN}: {getattr(err, 'strerror', None) or err}",
                "put the full chain (PEM) there",
            )
    domain, port = settings.tls.domain or "localhost", settings.tls.https_port
    host = settings.local_host
    try:
        served = served_certificate(host, port, domain)
        return certificate(
            served, f"served on {host}:{port} for {domain}", renews_itself=settings.https == "self-signed"
        )
    except (OSError, ssl.SSLError) as err:
        return Check("certificate", WARN, f"nothing served on {host}:{port} ({err})", "start the hub: `hubstack up`")


def public_name(settings):
    domain = settings.tls.domain
    if not domain:
        return Check(
            "public name",
            OK if settings.dev_mode else WARN,
            "HUBSTACK_DOMAIN not set",
            "" if settings.dev_mode else "set HUBSTACK_DOMAIN to the name researchers use",
        )
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(domain, None)})
    except socket.gaierror as err:
        return Check(
            "public name",
            FAIL,
            f"{domain} does not resolve ({err.strerror})",
            f"add an A/AAAA record for {domain} pointing at this machine",
        )
    mine = engine.local_addresses()
    if mine and not set(addresses) & mine:
        return Check(
            "public name",
            WARN,
            f"{domain} -> {', '.join(addresses)}, not an address of this machine",
            "fine behind NAT or a load balancer; otherwise fix the DNS record",
        )
    return Check("public name", OK, f"{domain} -> {', '.join(addresses)}")


def memory(settings):
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return Check("memory", WARN, "unknown", "")
    limit = settings.limits.mem_bytes
    found = f"{total / 1024**3:.1f} GiB here, up to {limit / 1024**3:.1f} GiB per user server"
    if limit > total / 2:
        return Check("memory", WARN, found, "lower HUBSTACK_USER_MEM_LIMIT: one user could take half of the machine")
    return Check("memory", OK, found)


def audit_log(hub, settings):
    """Production: the hub has written every decision to its audit log lately (see its log)."""
    if settings.dev_mode:
        return Check("audit log", OK, "dev mode: no access check, nothing to audit")
    if hub is None or hub.status != "running":
        return Check("audit log", WARN, "the hub is not running", "start it: `hubstack up`")
    failed = [line for line in hub.logs(tail=5000).decode(errors="replace").splitlines() if AUDIT_FAILED in line]
    if failed:
        return Check(
            "audit log",
            FAIL,
            f"{len(failed)} decision(s) not written lately, last: {failed[-1][-160:]}",
            "free space on the Docker data disk (the hub data volume), then check `hubstack access log`",
        )
    return Check("audit log", OK, "every recent decision written")


def readable_by_researchers(folder):
    st = os.stat(folder)
    return (st.st_uid == USER_UID and st.st_mode & 0o500 == 0o500) or st.st_mode & 0o005 == 0o005


def datasets(instance, settings):
    """access/datasets.toml: what is declared, and whether researchers (uid 1000) can read each folder."""
    from .stack import catalogue

    try:
        table = catalogue(instance.project, settings)
    except SettingsError as err:
        return Check("datasets", FAIL, "refused", str(err))
    if not table.datasets:
        return Check("datasets", OK, "none declared (README.md, 'Datasets')")
    found = f"{len(table.datasets)}: " + ", ".join(f"{d.name} ({d.grant})" for d in table.datasets)
    unreadable = [d.name for d in table.datasets if d.folder and not readable_by_researchers(d.folder)]
    if unreadable:
        return Check(
            "datasets",
            WARN,
            found,
            f"researchers (uid {USER_UID}) cannot read the folder of {', '.join(unreadable)}: chmod o+rx, or chown",
        )
    return Check("datasets", OK, found)


PROBE = """
import errno, json, socket, sys
def state(host, port):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); return "open"
    except ConnectionRefusedError:
        return "answers"  # a refusal came back: the address is reachable
    except OSError:
        return "blocked"
    finally:
        s.close()
print(json.dumps({f"{h}:{p}": state(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1:])}))
"""


def egress(client, settings):
    """Closed egress in force: a throwaway container on a network made as a user server's reaches
    neither the host, nor the metadata address, nor the internet."""
    mode = settings.egress.mode
    if not settings.egress.closed:
        if settings.dev_mode:
            return Check("egress", OK, "open (dev mode): user servers reach the internet")
        return Check(
            "egress", WARN, "open: user servers reach the internet", "set HUBSTACK_EGRESS=closed (the default)"
        )
    names = settings.names
    if client is None or engine.image_or_none(client, names.image("notebook")) is None:
        return Check("egress", WARN, f"{mode}, not tried: no notebook image", "run `hubstack build`, then again")
    network_name = f"{names.network}-doctor"
    subnet = free_subnet(settings.egress.pool, client.api.networks())
    targets = [f"{a}:22" for a in sorted(engine.local_addresses()) if ":" not in a and not a.startswith("127.")]
    targets += ["169.254.169.254:80", "1.1.1.1:443"]
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    network = client.networks.create(
        network_name, ipam=ipam, labels=names.labels(Role.USER_NETWORK), **network_options(network_name)
    )
    try:
        out = client.containers.run(
            names.image("notebook"),
            ["python3", "-c", PROBE, *targets],
            entrypoint=[],
            network=network_name,
            remove=True,
        )
        seen = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        network.remove()
    reached = sorted(t for t, state in seen.items() if state != "blocked")
    allowed = ", ".join(settings.egress.allow) or "nothing"
    if reached:
        return Check(
            "egress", FAIL, f"closed, but a user server reaches {', '.join(reached)}", "see README.md, 'Egress'"
        )
    return Check("egress", OK, f"closed: {len(seen)} addresses tried, none reachable; proxy allows {allowed}")


# -- all of them ------------------------------------------------------------------
def run_checks(instance, dev=False):
    rows = []
    row, client = docker_engine()
    rows.append(row)
    rows.append(compose_tool())
    row, settings = configuration(instance, dev)
    rows.append(row)
    if settings is None:  # the rest needs settings that at least load
        try:
            settings = instance.settings(dev=dev)
        except SettingsError:
            return rows
    hub = _container(client, settings.names.hub_container)
    rows.append(port_free("hub port", settings.hub_bind, settings.port, hub))
    if settings.tls.on:
        tls = _container(client, settings.names.tls_container)
        for name, port in (("https port", settings.tls.https_port), ("http port", settings.tls.http_port)):
            rows.append(port_free(name, settings.bind, port, tls))
    root = client.info().get("DockerRootDir", "/var/lib/docker") if client else "/var/lib/docker"
    rows.append(docker_disk(root if Path(root).exists() else instance.project, settings.disk))
    rows.append(home_quota(client, settings))
    rows.append(disk_space(instance.project, "checkout"))
    secrets_dir, _ = settings.folders(instance.project)
    shown = settings.shown_secrets_dir
    rows.append(secret_files(secrets_dir, shown))
    rows.append(https_certificate(settings, secrets_dir, shown))
    rows.append(public_name(settings))
    rows.append(memory(settings))
    rows.append(audit_log(hub, settings))
    rows.append(datasets(instance, settings))
    rows.append(egress(client, settings))
    return rows


def _container(client, name):
    if client is None:
        return None
    try:
        return client.containers.get(name)
    except Exception:  # NotFound, or an engine that went away
        return None
