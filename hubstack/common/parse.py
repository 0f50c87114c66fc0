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


def size_in_bytes(raw):
    """'1.5G' -> 1610612736 (binary units; K, M, G, T, with or without iB); None if it is not a size."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", raw, re.IGNORECASE)
    return int(float(match[1]) * UNITS[match[2].upper()]) if match else None


def shown_size(value):
    """1073741824 -> '1G': the largest unit that divides it."""
    for unit in "TGMK":
        if value and value % UNITS[unit] == 0:
            return f"{value // UNITS[unit]}{unit}"
    return str(value)


def size(key, raw, minimum, what="size", example="2G"):
    value = size_in_bytes(raw)
    if value is None or value < minimum:
        raise SettingsError(f"{key}={raw!r} is not a {what} of {shown_size(minimum)} or more: use e.g. {example}")
    return value


def memory(key, raw):
    return size(key, raw, 128 * 1024**2, "memory size", "2G or 512M")


def size_or_off(key, raw, minimum, what, example):
    """A size, or None for off (empty, off or 0)."""
    if raw.strip().lower() in ("", "off", "0"):
        return None
    return size(key, raw, minimum, what, f"{example}, or off")


def size_or_percent(key, raw, example):
    """'5G' -> (5368709120, None); '10%' -> (None, 10.0); 0 turns it off: (0, None)."""
    value = raw.strip()
    if value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            percent = None
        if percent is None or not 0 <= percent <= 90:
            raise SettingsError(f"{key}={raw!r} is not a percentage from 0% to 90%: use e.g. {example}")
        return None, percent
    found = size_in_bytes(value)
    if found is None:
        raise SettingsError(f"{key}={raw!r} is not a size or a percentage: use e.g. {example}, or 0 for no threshold")
    return found, None


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
