"""HTTPS: how the hub is published (plain, or behind the tls service, Caddy),
each setting checked on its own, then the chosen mode's needs together."""

import re
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from . import parse
from .contract import TLS_CHAIN, TLS_FOLDER, TLS_KEY
from .parse import SettingsError
from .registry import LETS_ENCRYPT

MODES = ("off", "acme", "files", "self-signed")
DNS_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DNS_NAME_RE = re.compile(rf"^{DNS_LABEL}(\.{DNS_LABEL})*$")
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


@dataclass(frozen=True)
class HTTPS:
    mode: str  # off, acme, files, self-signed
    domain: str  # the public DNS name; self-signed: localhost unless set
    https_port: int
    http_port: int
    acme_email: str
    acme_ca: str
    acme_ca_root: str  # path as given (relative to the checkout), or ""
    renew_interval: int
    renew_window: float

    @property
    def on(self):
        return self.mode != "off"


def https_settings(raw):
    """The HTTPS settings, each checked on its own; check_https checks them together."""
    mode = raw["HUBSTACK_HTTPS"].strip().lower() or "off"
    if mode not in MODES:
        raise SettingsError(
            f"HUBSTACK_HTTPS={raw['HUBSTACK_HTTPS']!r} is not known: use off, acme, files or self-signed"
        )
    domain = raw["HUBSTACK_DOMAIN"].strip().lower().rstrip(".")
    if domain and (len(domain) > 253 or not DNS_NAME_RE.match(domain) or domain.rsplit(".", 1)[-1].isdigit()):
        raise SettingsError(
            f"HUBSTACK_DOMAIN={raw['HUBSTACK_DOMAIN']!r} is not a DNS name: use the name researchers type, "
            "e.g. hub.example.org (no scheme, port, path or IP address)"
        )
    email = raw["HUBSTACK_ACME_EMAIL"].strip()
    if email and not EMAIL_RE.match(email):
        raise SettingsError(f"HUBSTACK_ACME_EMAIL={email!r} is not an e-mail address: use e.g. ops@example.org")
    acme_ca = raw["HUBSTACK_ACME_CA"].strip()
    if not re.match(r"^https://[^/\s]+(/\S*)?$", acme_ca):
        raise SettingsError(
            f"HUBSTACK_ACME_CA={acme_ca!r} is not an https URL: use the CA's ACME directory, e.g. {LETS_ENCRYPT}"
        )
    ca_root = raw["HUBSTACK_ACME_CA_ROOT"].strip()
    if ca_root:
        parse.mount_path("HUBSTACK_ACME_CA_ROOT", ca_root, what="file")
    return HTTPS(
        mode=mode,
        domain=domain or ("localhost" if mode == "self-signed" else ""),
        https_port=parse.port("HUBSTACK_HTTPS_PORT", raw["HUBSTACK_HTTPS_PORT"]),
        http_port=parse.port("HUBSTACK_HTTP_PORT", raw["HUBSTACK_HTTP_PORT"]),
        acme_email=email,
        acme_ca=acme_ca,
        acme_ca_root=ca_root,
        renew_interval=parse.number(
            "HUBSTACK_TLS_RENEW_INTERVAL", raw["HUBSTACK_TLS_RENEW_INTERVAL"], 1, 86400, int, "600"
        ),
        renew_window=parse.number(
            "HUBSTACK_TLS_RENEW_WINDOW", raw["HUBSTACK_TLS_RENEW_WINDOW"], 0.000001, 1, example="0.3333"
        ),
    )


def check_tls_files(secrets_dir, shown_secrets):
    """HUBSTACK_HTTPS=files: the full chain and its private key, readable only by their owner, belonging together."""
    folder, shown_dir = Path(secrets_dir) / TLS_FOLDER, f"{shown_secrets}/{TLS_FOLDER}"
    chain, key = folder / TLS_CHAIN, folder / TLS_KEY
    if not folder.is_dir() and (Path(secrets_dir) / TLS_CHAIN).is_file():
        raise SettingsError(
            f"the certificate files belong in {shown_dir}/ now (the tls container sees only that folder): "
            f"mkdir -m 700 {shown_dir} && mv {shown_secrets}/{TLS_CHAIN} {shown_secrets}/{TLS_KEY} {shown_dir}/"
        )
    for path, what in (
        (chain, "the certificate with its intermediates (full chain, PEM)"),
        (key, "its private key (PEM)"),
    ):
        if not path.is_file():
            raise SettingsError(
                f"HUBSTACK_HTTPS=files but {shown_dir}/{path.name} is missing: put {what} there (key: mode 600)"
            )
    if stat.S_IMODE(key.stat().st_mode) & 0o077:
        raise SettingsError(f"{shown_dir}/{TLS_KEY} can be read by others: run `chmod 600 {shown_dir}/{TLS_KEY}`")

    def no_password():  # never OpenSSL's prompt on the terminal
        raise SettingsError(f"{shown_dir}/{TLS_KEY} is encrypted: Caddy needs its unencrypted private key (mode 600)")

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(chain, key, password=no_password)
    except ssl.SSLError as err:
        reason = err.reason or str(err)
        fix = (
            "the key is not the certificate's: put the matching pair there"
            if "MISMATCH" in str(reason)
            else "both must be PEM: the full chain (leaf first) and its unencrypted private key"
        )
        raise SettingsError(f"{shown_dir}/{TLS_CHAIN} and {TLS_KEY} cannot be used ({reason}): {fix}") from None
    except OSError as err:
        raise SettingsError(f"cannot read {shown_dir}/{TLS_CHAIN} or {TLS_KEY}: {err.strerror}") from None


def check_https(settings, secrets_dir):
    """The HTTPS settings together: what the chosen mode needs is there and usable."""
    tls = settings.tls
    if not tls.on:
        return
    ports = {"HUBSTACK_HTTPS_PORT": tls.https_port, "HUBSTACK_HTTP_PORT": tls.http_port, "HUBSTACK_PORT": settings.port}
    for key, number in ports.items():
        others = [k for k, p in ports.items() if p == number and k != key]
        if others:
            raise SettingsError(f"{key}={number} is also {others[0]}: give HTTPS, HTTP and the hub different ports")
    if tls.mode == "acme":
        if not tls.domain:
            raise SettingsError(
                "HUBSTACK_HTTPS=acme needs HUBSTACK_DOMAIN: set it to the hub's public DNS name, e.g. hub.example.org"
            )
        if "." not in tls.domain:
            raise SettingsError(
                f"HUBSTACK_DOMAIN={tls.domain!r} cannot get a certificate from an ACME CA: use a public name such "
                "as hub.example.org, or HUBSTACK_HTTPS=self-signed to try HTTPS locally"
            )
        if not tls.acme_email:
            raise SettingsError(
                "HUBSTACK_HTTPS=acme needs HUBSTACK_ACME_EMAIL: the address the CA writes to about expiring certificates"
            )
    if tls.mode == "files":
        if not tls.domain:
            raise SettingsError("HUBSTACK_HTTPS=files needs HUBSTACK_DOMAIN: set it to the name the certificate is for")
        check_tls_files(secrets_dir, settings.shown_secrets_dir)


def acme_ca_root_file(settings, project):
    """HUBSTACK_ACME_CA_ROOT as a file on this machine (None when unset); refused when it is not a PEM certificate."""
    tls = settings.tls
    if not (tls.on and tls.acme_ca_root):
        return None
    path = Path(project) / tls.acme_ca_root
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise SettingsError(
            f"HUBSTACK_ACME_CA_ROOT={tls.acme_ca_root!r}: {err.strerror}: put the CA's root certificate (PEM) there"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise SettingsError(
            f"HUBSTACK_ACME_CA_ROOT={tls.acme_ca_root!r} holds no PEM certificate: use the CA's root certificate"
        )
    return path
