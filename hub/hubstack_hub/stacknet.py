"""Plain http is allowed for the hub's own requests only to loopback and to
containers that are on the stack's own network: a one-word host name alone
could be any machine a resolver search domain finds (`http://intranet`), and
the registry's answers and the provider's tokens would cross the LAN in clear.

Checked when the hub starts, where the names resolve as the hub will use them.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from hubstack.common.parse import SettingsError, loopback


def within(addresses, subnets):
    """True when every address is inside one of the subnets."""
    nets = [ipaddress.ip_network(s, strict=False) for s in subnets]
    return bool(addresses) and all(any(ipaddress.ip_address(a) in n for n in nets) for a in addresses)


def network_subnets(network):
    """The stack network's subnets, as the engine reports them; none if it cannot say."""
    import docker  # the hub image has it (DockerSpawner)

    try:
        config = docker.from_env().networks.get(network).attrs["IPAM"]["Config"] or []
    except docker.errors.DockerException:
        return []
    return [c["Subnet"] for c in config if c.get("Subnet")]


def refuse_plain_http_off_the_stack(urls, network, subnets=network_subnets, resolve=socket.getaddrinfo):
    """urls: {setting: url}. Raises SettingsError for a plain-http URL whose host is off the stack's network."""
    known = None
    for key, url in urls.items():
        parts = urlsplit(url or "")
        if parts.scheme != "http" or loopback(parts.hostname or ""):
            continue
        host = parts.hostname
        try:
            addresses = {info[4][0] for info in resolve(host, None)}
        except (socket.gaierror, UnicodeError):
            addresses = set()
        if addresses and known is None:
            known = subnets(network)
        if not addresses or not within(addresses, known):
            raise SettingsError(
                f"{key}={url!r} is plain http, and {host} is not a container on the stack's network {network}: "
                "use https, or run that service on the stack's network"
            )


def volume_attributes(name):
    """The engine's attributes of a volume, or None if there is none of that name."""
    import docker

    try:
        return docker.from_env().volumes.get(name).attrs
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as err:
        reason = str(err).splitlines()[0][:160]
        raise SettingsError(f"cannot ask the Docker engine about the dataset volume {name} ({reason})") from None
