"""HTTPS in front of the hub: the tls service (Caddy) in its three modes, against real containers.

- acme: certificates from Debian's pebble (an ACME CA) running on the
  instance's network as "pebble"; issued, served, and renewed by Caddy on its
  own while the hub keeps answering (failed requests during renewal counted).
- self-signed: Caddy's own CA; its root read from the tls data volume.
- files: a certificate made here by a test CA, replaced while running and
  served without restarting anything.

Every check connects to 127.0.0.1 with the configured name as SNI and
verifies the whole chain against the right root. The module leaves the
instance as it found it: the dev-mode hub on plain HTTP, no tls container.
"""

import datetime
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers import INSTANCE_ENV, NAME, PORT, REPO, run_hubstack, wait_for
from hubclient import BrowserUser
from hubstack import compose
from hubstack.build import Builder
from hubstack.common.contract import GENERATED_SECRETS
from hubstack.common.settings import load
from hubstack.images import Image

DOMAIN = f"hub.{NAME}.test"
HTTPS_PORT = int(os.environ.get("HUBCI_HTTPS_PORT", "8443"))
HTTP_PORT = int(os.environ.get("HUBCI_HTTP_PORT", "8480"))
TEST_SERVICES = Image("test-services", "tests/services", wheels=True)
PEBBLE_LIFETIME = 157766400  # seconds: pebble 2.4.0's certificate validity (5 years), checked below
RENEW_AFTER, RENEW_CHECK = 20, 5  # renewal due 20 s after issuance; Caddy looks every 5 s
HTTPS_ENV = {"HUBSTACK_DOMAIN": DOMAIN, "HUBSTACK_HTTPS_PORT": str(HTTPS_PORT), "HUBSTACK_HTTP_PORT": str(HTTP_PORT)}


# -- certificates made here ---------------------------------------------------------
def make_ca(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca, names):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# -- a client that connects to 127.0.0.1 as if DOMAIN resolved there --------------------
class Loopback(http.client.HTTPSConnection):
    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch(cafile, path="/hub/health", timeout=5):
    """GET https://DOMAIN:HTTPS_PORT<path> on a new connection, chain and name verified against cafile.

    Returns (status, headers, the served certificate as ssl decodes it).
    """
    context = ssl.create_default_context(cafile=str(cafile))
    conn = Loopback(DOMAIN, HTTPS_PORT, context=context, timeout=timeout)
    try:
        conn.connect()
        # Read the certificate now: a response with "Connection: close" (Caddy sends one
        # while a reload drains the old server) hands the socket over and clears conn.sock.
        cert = conn.sock.getpeercert()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders()), cert
    finally:
        conn.close()


def serves(cafile):
    try:
        return fetch(cafile)[0] == 200
    except OSError:
        return False


def serial(cert):
    """The serial number as an int: ssl pads its hex to whole bytes ('0B84...'), so compare numbers."""
    return int(cert["serialNumber"], 16)


def when(cert, field):
    return ssl.cert_time_to_seconds(cert[field])


class Hammer:
    """Requests through HTTPS, one new verified connection each, in a thread: counts what fails."""

    def __init__(self, cafile):
        self.cafile, self.results, self.stopped = cafile, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopped.is_set():
            started = time.time()
            try:
                status, _, cert = fetch(self.cafile)
                self.results.append((started, status == 200, serial(cert), when(cert, "notBefore")))
            except Exception as err:  # anything else is a failure to count, not a dead thread
                self.results.append((started, False, None, repr(err)))
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(30)

    @property
    def failures(self):
        return [r for r in self.results if not r[1]]

    def served(self):
        """(serial, its notBefore, when first served) of each certificate, in the order served."""
        seen = {}
        for started, ok, serial, not_before in self.results:
            if ok and serial not in seen:
                seen[serial] = (serial, not_before, started)
        return list(seen.values())

    def serials(self):
        return [(serial, first_seen) for serial, _, first_seen in self.served()]


def redirect(path="/hub/health"):
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": DOMAIN})
        response = conn.getresponse()
        return response.status, response.getheader("Location")
    finally:
        conn.close()


def tls_container(docker_client):
    return docker_client.containers.get(f"{NAME}-tls")


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def https_instance(built_stack, docker_client, settings):
    """The instance's hub, switched between HTTPS modes by the tests; back to plain dev mode at the end."""
    yield
    result = run_hubstack("up", timeout=600)  # HTTPS off: the CLI removes the terminator
    assert not docker_client.containers.list(all=True, filters={"name": f"^{NAME}-tls$"}), result.stdout


@pytest.fixture(scope="module")
def pebble(https_instance, docker_client, settings, tmp_path_factory):
    """Debian's pebble on the instance's network as "pebble", challenges always valid."""
    Builder(docker_client, settings, REPO, echo=lambda *_: None).run(images=(TEST_SERVICES,))
    folder = tmp_path_factory.mktemp("pebble")
    minica = make_ca("pebble listener test CA")
    key, cert = make_leaf(minica, ["pebble", "localhost"])
    (folder / "listener-ca.pem").write_bytes(pem(minica[1]))
    (folder / "cert.pem").write_bytes(pem(cert))
    (folder / "key.pem").write_bytes(key_pem(key))
    (folder / "pebble-config.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": "0.0.0.0:14000",
                    "managementListenAddress": "0.0.0.0:15000",
                    "certificate": "/srv/pebble/cert.pem",
                    "privateKey": "/srv/pebble/key.pem",
                    "httpPort": 5002,
                    "tlsPort": 5001,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    container = docker_client.containers.create(
        settings.names.image("test-services"),
        ["pebble", "-config", "/srv/pebble/pebble-config.json"],
        name=f"{NAME}-test-pebble",
        labels={**settings.names.labels(), "hubstack.role": "test-service"},
        detach=True,
        environment={"PEBBLE_VA_ALWAYS_VALID": "1", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        volumes={str(folder): {"bind": "/srv/pebble", "mode": "ro"}},
    )
    docker_client.networks.get(settings.names.network).connect(container, aliases=["pebble"])
    container.start()
    # Pebble makes a new issuing root at every start; its management endpoint gives it out.
    ask = (
        "import ssl, urllib.request as u; c = ssl.create_default_context(cafile='/srv/pebble/listener-ca.pem'); "
        "print(u.urlopen('https://localhost:15000/roots/0', context=c, timeout=5).read().decode())"
    )
    wait_for(lambda: container.exec_run(["python3", "-c", ask]).exit_code == 0, 60, "pebble's management endpoint")
    root = container.exec_run(["python3", "-c", ask]).output.decode()
    assert "BEGIN CERTIFICATE" in root, root
    (folder / "issuing-root.pem").write_text(root)
    yield {"listener_ca": folder / "listener-ca.pem", "root": folder / "issuing-root.pem"}
    container.remove(force=True)


# -- refusing to start ----------------------------------------------------------------------
def test_plain_http_on_a_public_address_is_refused_by_the_cli_and_the_hub(built_stack, docker_client, settings):
    env = {"HUBSTACK_NAME": f"{NAME}-bad", "DEV_MODE": "0", "HUBSTACK_BIND": "0.0.0.0"}
    result = run_hubstack("up", env=env, check=False, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "HUBSTACK_HTTPS is off but HUBSTACK_BIND=0.0.0.0 would publish the hub in plain HTTP" in lines[0]
    assert not docker_client.containers.list(all=True, filters={"label": f"hubstack.instance={NAME}-bad"})
    # The hub image itself, started past the CLI with the same settings.
    container = docker_client.containers.run(settings.names.image("hub"), environment=env, detach=True)
    try:
        assert container.wait(timeout=120)["StatusCode"] != 0
        log = container.logs(stdout=False, stderr=True).decode().strip().splitlines()
        assert log[-1].startswith("hubstack: ") and "HUBSTACK_HTTPS is off but HUBSTACK_BIND=0.0.0.0" in log[-1], log[
            -5:
        ]
    finally:
        container.remove(force=True)


@pytest.mark.parametrize(
    "case,message",
    [
        ("unknown mode", "HUBSTACK_HTTPS='tls' is not known: use off, acme, files or self-signed"),
        ("acme without e-mail", "HUBSTACK_HTTPS=acme needs HUBSTACK_ACME_EMAIL"),
        ("domain with a scheme", "HUBSTACK_DOMAIN='https://hub.example.org' is not a DNS name"),
        ("files missing", "HUBSTACK_HTTPS=files but {secrets}/tls/tls_fullchain.pem is missing"),
        (
            "key readable by all",
            "{secrets}/tls/tls_privkey.pem can be read by others: run `chmod 600 {secrets}/tls/tls_privkey.pem`",
        ),
    ],
)
def test_bad_https_settings_stop_the_cli_with_one_line(tmp_path, case, message):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    env = {
        "HUBSTACK_NAME": f"{NAME}-bad",
        "HUBSTACK_SECRETS_DIR": str(secrets),
        **HTTPS_ENV,
        "HUBSTACK_DOMAIN": "hub.example.org",
        "HUBSTACK_HTTPS": "files",
    }
    if case == "unknown mode":
        env["HUBSTACK_HTTPS"] = "tls"
    elif case == "acme without e-mail":
        env["HUBSTACK_HTTPS"] = "acme"
    elif case == "domain with a scheme":
        env["HUBSTACK_DOMAIN"] = "https://hub.example.org"
    elif case == "key readable by all":
        key, cert = make_leaf(make_ca("test CA"), ["hub.example.org"])
        (secrets / "tls").mkdir()
        (secrets / "tls" / "tls_fullchain.pem").write_bytes(pem(cert))
        (secrets / "tls" / "tls_privkey.pem").write_bytes(key_pem(key))
        (secrets / "tls" / "tls_privkey.pem").chmod(0o644)
    result = run_hubstack("up", env=env, check=False, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message.format(secrets=secrets) in lines[0]


def published(env, cli=True):
    """{service: [host_ip:host_port, ...]} as Compose would publish them, through the CLI's variables or by hand."""
    settings = load(environ={**INSTANCE_ENV, **env})
    environment = compose.environment(settings) if cli else {**os.environ, **settings.as_environment()}
    if not cli:
        environment.pop("HUBSTACK_HUB_BIND", None)
        environment.pop("COMPOSE_PROFILES", None)
    result = subprocess.run(
        compose.argv(settings, REPO, "config"), env=environment, capture_output=True, text=True, check=True
    )
    services = yaml.safe_load(result.stdout)["services"]
    ports = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, str):  # Compose v1: "127.0.0.1:8000:8000/tcp"
                host_ip, host_port = port.split(":")[:2]
            else:  # v2: the long form
                host_ip, host_port = port.get("host_ip", "0.0.0.0"), str(port["published"])
            ports.setdefault(name, []).append(f"{host_ip}:{host_port}")
    return ports


def test_behind_https_compose_publishes_the_hub_on_loopback_only():
    public = {"HUBSTACK_BIND": "0.0.0.0", "DEV_MODE": "0"}
    https = {**public, **HTTPS_ENV, "HUBSTACK_HTTPS": "acme", "HUBSTACK_ACME_EMAIL": "ops@example.org"}
    assert published(https) == {"hub": [f"127.0.0.1:{PORT}"], "tls": [f"0.0.0.0:{HTTPS_PORT}", f"0.0.0.0:{HTTP_PORT}"]}
    # `docker compose up` by hand, without the CLI's variables: the hub is never more open.
    assert published(https, cli=False)["hub"] == [f"127.0.0.1:{PORT}"]
    assert published(public, cli=False)["hub"] == [f"127.0.0.1:{PORT}"]
    # HTTPS off (dev mode, allowed on purpose): the hub itself on HUBSTACK_BIND, as before.
    insecure_dev = {**public, "DEV_MODE": "1", "HUBSTACK_ALLOW_INSECURE_DEV": "1"}
    assert published(insecure_dev)["hub"] == [f"0.0.0.0:{PORT}"]


def test_the_tls_service_starts_only_in_its_profile(built_stack, docker_client):
    """A hand-run `docker compose up` makes the hub alone; the terminator needs `--profile tls` (the CLI sets it)."""
    settings = load(environ=INSTANCE_ENV)
    assert not docker_client.containers.list(all=True, filters={"name": f"^{NAME}-tls$"})
    by_hand = {k: v for k, v in compose.environment(settings).items() if k != "COMPOSE_PROFILES"}
    subprocess.run(
        compose.argv(settings, REPO, "up", "--no-start"), env=by_hand, capture_output=True, text=True, check=True
    )
    names = [c.name for c in docker_client.containers.list(all=True, filters={"label": f"hubstack.instance={NAME}"})]
    assert f"{NAME}-hub" in names and f"{NAME}-tls" not in names, names


# -- the three modes -------------------------------------------------------------------------
def test_acme_certificate_is_issued_served_and_renewed_without_a_failed_request(pebble, docker_client):
    window = 1 - RENEW_AFTER / PEBBLE_LIFETIME
    env = {
        **HTTPS_ENV,
        "HUBSTACK_HTTPS": "acme",
        "HUBSTACK_ACME_EMAIL": "ops@example.org",
        "HUBSTACK_ACME_CA": "https://pebble:14000/dir",
        "HUBSTACK_ACME_CA_ROOT": str(pebble["listener_ca"]),
        "HUBSTACK_TLS_RENEW_INTERVAL": str(RENEW_CHECK),
        "HUBSTACK_TLS_RENEW_WINDOW": f"{window:.12f}",
    }
    result = run_hubstack("up", env=env, timeout=600)
    assert f"is up: https://{DOMAIN}:{HTTPS_PORT}" in result.stdout, result.stdout
    wait_for(lambda: serves(pebble["root"]), 90, "a certificate from pebble")
    status, headers, first = fetch(pebble["root"])
    assert status == 200 and headers.get("Strict-Transport-Security") == "max-age=31536000"
    assert first["subjectAltName"] == (("DNS", DOMAIN),)
    lifetime = when(first, "notAfter") - when(first, "notBefore")
    assert abs(lifetime - PEBBLE_LIFETIME) <= 2, lifetime  # what the renewal window above assumes
    assert redirect() == (308, f"https://{DOMAIN}:{HTTPS_PORT}/hub/health")
    started = tls_container(docker_client).attrs["State"]["StartedAt"]

    with Hammer(pebble["root"]) as hammer:
        wait_for(lambda: len(hammer.serials()) >= 3, 120, "two renewals")
        time.sleep(2)
    serials = hammer.serials()
    failures = hammer.failures
    print(
        f"\nACME renewal: {len(hammer.results)} requests, {len(failures)} failed, "
        f"{len(serials)} certificates served: {[s for s, _ in serials]}"
    )
    assert failures == [], failures[:5]
    # Each certificate was served until its renewal was due, the next one within a few checks of that.
    served = hammer.served()
    for (_, issued, _), (serial, _, renewed_at) in zip(served, served[1:], strict=False):
        due = issued + RENEW_AFTER
        assert due - 1 <= renewed_at <= due + RENEW_CHECK + 30, (serial, due, renewed_at)
    tls = tls_container(docker_client)
    assert tls.attrs["State"]["StartedAt"] == started and tls.attrs["RestartCount"] == 0
    status_line = run_hubstack("status", env=env).stdout
    assert f"HTTPS (acme) at https://{DOMAIN}:{HTTPS_PORT}: terminator running, certificate valid until" in status_line


def test_acme_hub_sees_https_and_websockets_pass(pebble, monkeypatch):
    """Log in and run code over the kernel websocket through Caddy; the hub marks its cookies Secure."""
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1" if host == DOMAIN else host, *a, **k)
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pebble["root"]))
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(pebble["root"]))
    researcher = BrowserUser(f"https://{DOMAIN}:{HTTPS_PORT}", "tls-user")
    response = researcher.login()
    login_cookie = next(c for c in researcher.session.cookies if c.name == "jupyterhub-session-id")
    assert login_cookie.secure, response.headers
    xsrf = [c for c in researcher.session.cookies if c.name == "_xsrf"]
    assert xsrf and all(c.secure for c in xsrf), [(c.name, c.path, c.secure) for c in researcher.session.cookies]
    assert all(r.url.startswith(f"https://{DOMAIN}:{HTTPS_PORT}/") for r in (*response.history, response))
    researcher.start_server()
    kernel = researcher.start_kernel()
    out, error = researcher.run(kernel["id"], "print(6 * 7)")
    assert (out.strip(), error) == ("42", None)
    researcher.stop_server()


def test_self_signed_certificate_from_caddys_own_ca(https_instance, docker_client, tmp_path):
    result = run_hubstack("up", env={**HTTPS_ENV, "HUBSTACK_HTTPS": "self-signed"}, timeout=600)
    assert f"is up: https://{DOMAIN}:{HTTPS_PORT}" in result.stdout, result.stdout
    root = tmp_path / "caddy-root.pem"

    def read_root():
        got = tls_container(docker_client).exec_run(["cat", "/data/caddy/pki/authorities/local/root.crt"])
        root.write_bytes(got.output)
        return got.exit_code == 0 and serves(root)

    wait_for(read_root, 60, "Caddy's local CA and a certificate from it")
    status, _, cert = fetch(root)
    assert status == 200 and cert["subjectAltName"] == (("DNS", DOMAIN),)
    assert redirect("/hub/login") == (308, f"https://{DOMAIN}:{HTTPS_PORT}/hub/login")
    # Outside files mode the terminator sees none of the hub's secrets.
    listing = tls_container(docker_client).exec_run(["ls", "-A", "/run/secrets/hubstack"]).output.decode().split()
    assert listing == ["README.md"], listing
    with pytest.raises(ssl.SSLCertVerificationError):  # not trusted without that root
        fetch(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def test_provided_files_are_served_and_replaced_without_a_restart(https_instance, docker_client, tmp_path):
    secrets = tmp_path / "secrets"
    (secrets / "tls").mkdir(mode=0o700, parents=True)
    run_hubstack("secrets", "init", env={"HUBSTACK_SECRETS_DIR": str(secrets)})  # secrets the terminator must not see
    ca = make_ca("hubstack test CA")
    (tmp_path / "ca.pem").write_bytes(pem(ca[1]))

    def install(names):
        key, cert = make_leaf(ca, names)
        for name, data in (("tls_privkey.pem", key_pem(key)), ("tls_fullchain.pem", pem(cert) + pem(ca[1]))):
            part = secrets / "tls" / f".{name}.new"
            part.write_bytes(data)
            part.chmod(0o600)
            part.rename(secrets / "tls" / name)  # as certbot-like tools do: whole files, swapped in
        return cert.serial_number

    first = install([DOMAIN])
    env = {**HTTPS_ENV, "HUBSTACK_HTTPS": "files", "HUBSTACK_SECRETS_DIR": str(secrets)}
    result = run_hubstack("up", env=env, timeout=600)
    assert "certificate valid until" in result.stdout, result.stdout
    status, _, cert = fetch(tmp_path / "ca.pem")
    assert status == 200 and serial(cert) == first
    assert redirect() == (308, f"https://{DOMAIN}:{HTTPS_PORT}/hub/health")
    tls = tls_container(docker_client)
    started, container_id = tls.attrs["State"]["StartedAt"], tls.id
    # The terminator has its certificate and key, and none of the hub's secrets beside them.
    listing = tls.exec_run(["ls", "-A", "/run/secrets/hubstack"]).output.decode().split()
    assert sorted(listing) == ["tls_fullchain.pem", "tls_privkey.pem"], listing
    assert sorted(p.name for p in secrets.iterdir()) == sorted([*GENERATED_SECRETS, "tls"])

    with Hammer(tmp_path / "ca.pem") as hammer:
        time.sleep(1)
        second = install([DOMAIN, f"www.{DOMAIN}"])
        deadline = time.monotonic() + 90
        while not any(s == second for s, _ in hammer.serials()):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the new certificate was not served within 90 s; {len(hammer.results)} requests, "
                    f"last {hammer.results[-3:]}; terminator's log:\n{tls.logs(tail=15).decode(errors='replace')}"
                )
            time.sleep(0.5)
        time.sleep(1)
    print(f"\nfiles reload: {len(hammer.results)} requests, {len(hammer.failures)} failed")
    assert [s for s, _ in hammer.serials()] == [first, second]
    assert hammer.failures == [], hammer.failures[:5]
    tls = tls_container(docker_client)
    assert (tls.id, tls.attrs["State"]["StartedAt"], tls.attrs["RestartCount"]) == (container_id, started, 0)
    assert "certificate files changed: Caddy reloaded them" in tls.logs().decode()
