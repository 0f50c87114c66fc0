"""HTTPS settings: modes, what each needs, the fail-safe for plain HTTP, the derived Compose variables."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hubstack import compose
from hubstack.common.https import acme_ca_root_file
from hubstack.common.parse import SettingsError
from hubstack.common.policy import check_mode
from hubstack.common.registry import LETS_ENCRYPT
from hubstack.common.settings import load
from hubstack.secrets import init

ACME = {"HUBSTACK_HTTPS": "acme", "HUBSTACK_DOMAIN": "hub.example.org", "HUBSTACK_ACME_EMAIL": "ops@example.org"}
NOWHERE = ("/nonexistent/secrets", "/nonexistent/access")


def refused(environ, message, folders=NOWHERE):
    with pytest.raises(SettingsError) as err:
        check_mode(load(environ=environ), *folders)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    return str(err.value)


def key_and_cert(folder, name="hub.example.org", key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(exist_ok=True)
    (folder / "tls").mkdir(exist_ok=True)
    (folder / "tls" / "tls_fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = folder / "tls" / "tls_privkey.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return key


def test_https_is_off_by_default_and_the_hub_keeps_its_bind():
    s = load(environ={})
    assert (s.https, s.hub_bind, s.public_url) == ("off", "127.0.0.1", "http://127.0.0.1:8000")
    assert s.tls.acme_ca == LETS_ENCRYPT and (s.tls.https_port, s.tls.http_port) == (443, 80)


def test_behind_https_the_hub_port_is_loopback_only_and_the_public_url_is_https():
    s = load(environ={**ACME, "HUBSTACK_BIND": "0.0.0.0", "HUBSTACK_DOMAIN": "Hub.Example.ORG."})
    assert s.tls.domain == "hub.example.org"
    assert (s.hub_bind, s.url, s.public_url) == ("127.0.0.1", "http://127.0.0.1:8000", "https://hub.example.org")
    s = load(environ={**ACME, "HUBSTACK_HTTPS_PORT": "8443"})
    assert s.public_url == "https://hub.example.org:8443"


def test_compose_gets_the_derived_variables():
    plain = compose.derived(load(environ={"HUBSTACK_BIND": "0.0.0.0"}))
    host = plain.pop("HUBSTACK_HOST_ADDRESSES").split(",")  # the egress proxy never connects to these
    assert host and not any(a.startswith("127.") or ":" in a for a in host)
    assert plain == {
        "COMPOSE_PROFILES": "tls,egress",
        "HUBSTACK_HUB_BIND": "0.0.0.0",
        "HUBSTACK_TLS_FILES_DIR": "./tls/no-files",
    }
    tls = compose.derived(load(environ={**ACME, "HUBSTACK_BIND": "0.0.0.0"}))
    assert tls["HUBSTACK_HUB_BIND"] == "127.0.0.1" and tls["HUBSTACK_TLS_FILES_DIR"] == "./tls/no-files"
    files = compose.derived(load(environ={"HUBSTACK_HTTPS": "files", "HUBSTACK_SECRETS_DIR": "/srv/hub-secrets"}))
    assert files["HUBSTACK_TLS_FILES_DIR"] == "/srv/hub-secrets/tls"  # that folder only, never the other secrets


def test_self_signed_defaults_to_localhost():
    s = load(environ={"HUBSTACK_HTTPS": "Self-Signed", "DEV_MODE": "1"})
    check_mode(s, *NOWHERE)
    assert (s.https, s.public_url) == ("self-signed", "https://localhost")


@pytest.mark.parametrize(
    "environ,message",
    [
        (
            {"HUBSTACK_HTTPS": "letsencrypt"},
            "HUBSTACK_HTTPS='letsencrypt' is not known: use off, acme, files or self-signed",
        ),
        ({"HUBSTACK_DOMAIN": "https://hub.example.org"}, "HUBSTACK_DOMAIN='https://hub.example.org' is not a DNS name"),
        ({"HUBSTACK_DOMAIN": "hub.example.org:443"}, "is not a DNS name"),
        ({"HUBSTACK_DOMAIN": "hub_1.example.org"}, "is not a DNS name"),
        ({"HUBSTACK_DOMAIN": "-hub.example.org"}, "is not a DNS name"),
        ({"HUBSTACK_DOMAIN": "192.0.2.10"}, "is not a DNS name"),
        ({"HUBSTACK_DOMAIN": "a" * 64 + ".org"}, "is not a DNS name"),
        ({"HUBSTACK_ACME_EMAIL": "ops"}, "HUBSTACK_ACME_EMAIL='ops' is not an e-mail address"),
        (
            {"HUBSTACK_ACME_CA": "http://ca.example.org/dir"},
            "HUBSTACK_ACME_CA='http://ca.example.org/dir' is not an https URL",
        ),
        (
            {"HUBSTACK_ACME_CA_ROOT": "root.pem"},
            "HUBSTACK_ACME_CA_ROOT='root.pem' is not a file path Compose can mount",
        ),
        ({"HUBSTACK_HTTPS_PORT": "0"}, "HUBSTACK_HTTPS_PORT='0' is not a port number"),
        ({"HUBSTACK_TLS_RENEW_WINDOW": "1.5"}, "HUBSTACK_TLS_RENEW_WINDOW='1.5' is not a number"),
    ],
)
def test_bad_values_are_refused_at_load_with_one_line(environ, message):
    with pytest.raises(SettingsError) as err:
        load(environ=environ)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "environ,message",
    [
        ({**ACME, "HUBSTACK_DOMAIN": ""}, "HUBSTACK_HTTPS=acme needs HUBSTACK_DOMAIN"),
        ({**ACME, "HUBSTACK_ACME_EMAIL": ""}, "HUBSTACK_HTTPS=acme needs HUBSTACK_ACME_EMAIL"),
        ({**ACME, "HUBSTACK_DOMAIN": "localhost"}, "or HUBSTACK_HTTPS=self-signed to try HTTPS locally"),
        ({**ACME, "HUBSTACK_HTTPS_PORT": "8000"}, "HUBSTACK_HTTPS_PORT=8000 is also HUBSTACK_PORT"),
        ({**ACME, "HUBSTACK_HTTP_PORT": "443"}, "HUBSTACK_HTTPS_PORT=443 is also HUBSTACK_HTTP_PORT"),
        ({"HUBSTACK_HTTPS": "files"}, "HUBSTACK_HTTPS=files needs HUBSTACK_DOMAIN"),
        (
            {"HUBSTACK_HTTPS": "files", "HUBSTACK_DOMAIN": "hub.example.org"},
            "HUBSTACK_HTTPS=files but ./secrets/tls/tls_fullchain.pem is missing",
        ),
    ],
)
@pytest.mark.parametrize("dev", ["0", "1"])
def test_what_each_mode_needs_is_checked_in_dev_mode_and_production(environ, message, dev):
    refused({**environ, "DEV_MODE": dev, "HUBSTACK_SECRETS_DIR": "./secrets"}, message)


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.0.2.10", "::"])
def test_production_refuses_plain_http_on_a_public_address(bind):
    line = refused(
        {"HUBSTACK_BIND": bind}, f"HUBSTACK_HTTPS is off but HUBSTACK_BIND={bind} would publish the hub in plain HTTP"
    )
    assert "set HUBSTACK_HTTPS (acme, files or self-signed)" in line


def test_production_on_loopback_without_https_goes_on_to_the_log_in_checks():
    refused({"HUBSTACK_BIND": "127.0.0.1"}, "production log-in is not configured")


def test_production_behind_https_goes_on_to_the_log_in_checks():
    refused({**ACME, "HUBSTACK_BIND": "0.0.0.0"}, "production log-in is not configured")


def test_files_mode_checks_the_files(tmp_path):
    secrets = tmp_path / "secrets"
    env = {
        "HUBSTACK_HTTPS": "files",
        "HUBSTACK_DOMAIN": "hub.example.org",
        "DEV_MODE": "1",
        "HUBSTACK_SECRETS_DIR": "./secrets",
    }
    folders = (secrets, tmp_path / "access")
    key = key_and_cert(secrets)
    check_mode(load(environ=env), *folders)  # a matching pair, key private: fine
    (secrets / "tls" / "tls_privkey.pem").chmod(0o644)
    refused(
        env,
        "./secrets/tls/tls_privkey.pem can be read by others: run `chmod 600 ./secrets/tls/tls_privkey.pem`",
        folders,
    )
    (secrets / "tls" / "tls_privkey.pem").chmod(0o640)
    refused(env, "can be read by others", folders)
    (secrets / "tls" / "tls_privkey.pem").unlink()
    refused(env, "HUBSTACK_HTTPS=files but ./secrets/tls/tls_privkey.pem is missing", folders)
    # A key of another certificate.
    key_and_cert(secrets)
    chain = (secrets / "tls" / "tls_fullchain.pem").read_bytes()
    key_and_cert(secrets, key=key)
    (secrets / "tls" / "tls_fullchain.pem").write_bytes(chain)
    refused(env, "the key is not the certificate's: put the matching pair there", folders)
    (secrets / "tls" / "tls_fullchain.pem").write_text("not a certificate\n")
    refused(env, "both must be PEM", folders)


def test_encrypted_key_is_refused_without_prompting(tmp_path):
    secrets = tmp_path / "secrets"
    key = key_and_cert(secrets)
    (secrets / "tls" / "tls_privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    env = {
        "HUBSTACK_HTTPS": "files",
        "HUBSTACK_DOMAIN": "hub.example.org",
        "DEV_MODE": "1",
        "HUBSTACK_SECRETS_DIR": "./secrets",
    }
    refused(
        env,
        "./secrets/tls/tls_privkey.pem is encrypted: Caddy needs its unencrypted private key",
        (secrets, tmp_path / "access"),
    )


def test_acme_ca_root_must_be_a_pem_file(tmp_path):
    s = load(environ={**ACME, "HUBSTACK_ACME_CA_ROOT": "./ca-root.pem"})
    with pytest.raises(SettingsError, match=r"HUBSTACK_ACME_CA_ROOT='./ca-root.pem': No such file"):
        acme_ca_root_file(s, tmp_path)
    (tmp_path / "ca-root.pem").write_text("hello\n")
    with pytest.raises(SettingsError, match="holds no PEM certificate"):
        acme_ca_root_file(s, tmp_path)
    key_and_cert(tmp_path / "pki")
    (tmp_path / "ca-root.pem").write_bytes((tmp_path / "pki" / "tls" / "tls_fullchain.pem").read_bytes())
    assert acme_ca_root_file(s, tmp_path) == tmp_path / "ca-root.pem"
    assert acme_ca_root_file(load(environ=ACME), tmp_path) is None


def test_callback_url_must_be_on_the_https_domain(tmp_path):
    """Behind HTTPS the OAuth callback is https://<HUBSTACK_DOMAIN>/hub/oauth_callback."""
    secrets, access = tmp_path / "secrets", tmp_path / "access"
    secrets.mkdir()
    access.mkdir()
    init(secrets)
    (secrets / "oauth_client_secret").write_text("client-secret\n")
    (secrets / "oauth_client_secret").chmod(0o600)
    (access / "approvals.csv").write_text("email,approved_until\n")
    env = {
        **ACME,
        "HUBSTACK_BIND": "0.0.0.0",
        "HUBSTACK_OAUTH_PROVIDER": "google",
        "OAUTH_CLIENT_ID": "hub-client",
        "OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
        "HUBSTACK_ACCESS_SOURCES": "list",
    }
    assert check_mode(load(environ=env), secrets, access).callback_url == "https://hub.example.org/hub/oauth_callback"
    refused(
        {**env, "HUBSTACK_DOMAIN": "data.example.org"},
        "is not on HUBSTACK_DOMAIN=data.example.org: use https://data.example.org/hub/oauth_callback",
        (secrets, access),
    )


def test_certificate_files_in_the_old_place_are_sent_to_their_folder(tmp_path):
    secrets = tmp_path / "secrets"
    key_and_cert(secrets)
    for name in ("tls_fullchain.pem", "tls_privkey.pem"):
        (secrets / "tls" / name).rename(secrets / name)
    (secrets / "tls").rmdir()
    env = {"HUBSTACK_HTTPS": "files", "HUBSTACK_DOMAIN": "hub.example.org", "DEV_MODE": "1"}
    refused(env, "the certificate files belong in ./secrets/tls/ now", (secrets, tmp_path / "access"))
