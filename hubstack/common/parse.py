"""Reading one setting's value: each parser returns the value or raises a
SettingsError whose one line names the setting and says what to use instead."""

import ipaddress
import re
from urllib.parse import urlsplit

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message says what to fix."""


def boolean(key, raw):
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SettingsError(f"{key}={raw!r} is not a yes/no value: use 1 or 0")


def port(key, raw):
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingsError(f"{key}={raw!r} is not a port number: use a number from 1 to 65535")
    return int(raw)


def address(key, raw):
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise SettingsError(
            f"{key}={raw!r} is not an IP address: use 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces)"
        ) from None


def memory(key, raw):
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", raw, re.IGNORECASE)
    value = int(float(match[1]) * UNITS[match[2].upper()]) if match else 0
    if value < 128 * 1024**2:
        raise SettingsError(f"{key}={raw!r} is not a memory size of 128M or more: use e.g. 2G or 512M")
    return value


def number(key, raw, low, high, kind=float, example="1"):
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{key}={raw!r} is not a number from {low} to {high}: use e.g. {example}")
    return value


def seconds(key, raw, low, high):
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(
            f"{key}={raw!r} is not a number of seconds from {low} to {high}: use e.g. {high // 10 or 1}"
        )
    return value


def items(raw):
    """'a, b\\nc' -> ['a', 'b', 'c']"""
    return [item.strip() for item in raw.replace("\n", ",").split(",") if item.strip()]


def mount_path(key, raw, what="folder"):
    """A host path Compose can mount: ./relative (to the checkout) or absolute, no spaces, ':' or '$'."""
    path = raw.strip()
    if not path.startswith(("./", "../", "/")) or any(c.isspace() or c in ":$" for c in path):
        example = "./name.pem" if what == "file" else "./name"
        raise SettingsError(f"{key}={path!r} is not a {what} path Compose can mount: use {example} or an absolute path")
    return path


def loopback(host):
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stack_internal(host):
    """A one-label name, such as a container on the stack's own Docker network."""
    return re.fullmatch(r"[a-z][a-z0-9_-]*", host) is not None


def url(key, raw, required=True, browser=False):
    raw = raw.strip()
    if not raw:
        if required:
            raise SettingsError(f"{key} is not set: production log-in needs it (see README.md, 'Production')")
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{key}={raw!r} is not an http(s) URL: use e.g. https://login.example.org/...")
    if parts.scheme == "http":
        host = parts.hostname
        if not (loopback(host) or (not browser and stack_internal(host))):
            where = "on this machine" if browser else "on this machine or the stack's own network"
            raise SettingsError(f"{key}={raw!r} is plain http: use https (http only {where})")
    return raw
