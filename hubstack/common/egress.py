"""Where user servers may connect (HUBSTACK_EGRESS, HUBSTACK_EGRESS_ALLOW, README.md "Egress").

closed (production's default): each user server is alone on its own internal
Docker network, with no route out and no address of the host on it (the bridge
has no IP); the hub and the egress container are attached to it. Names resolve
through Docker's embedded DNS (the hub, the proxy) and otherwise reach only
the egress container's sinkhole DNS. HTTP(S) goes through its squid to the
host names of HUBSTACK_EGRESS_ALLOW, and nowhere else. open: today's shared
network, with the internet (dev mode's default).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from . import parse
from .contract import EGRESS_SERVICE, HUB_SERVICE, PROXY_PORT, USER_BRIDGE_PREFIX, Role
from .parse import SettingsError

MODES = ("closed", "open")
HOST_NAME = re.compile(r"\.?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
USER_PREFIX = 28  # each user network: 16 addresses (the user's server, the hub, the egress container)


@dataclass(frozen=True)
class Egress:
    mode: str = "open"
    allow: tuple = ()  # host names; ".example.org" also allows its subdomains
    dns: tuple = ()  # resolvers the proxy uses (default: the host's)
    pool: str = "10.213.0.0/16"

    @property
    def closed(self):
        return self.mode == "closed"

    @property
    def proxy_url(self):
        return f"http://{EGRESS_SERVICE}:{PROXY_PORT}"

    def server_environment(self):
        """What a user server is told: every HTTP(S) client goes through the proxy, except to the hub."""
        proxy, direct = self.proxy_url, f"{HUB_SERVICE},localhost,127.0.0.1"
        return {
            **{key: proxy for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
            **{key: direct for key in ("NO_PROXY", "no_proxy")},
        }


def load(raw, dev_mode):
    mode = raw["HUBSTACK_EGRESS"].strip().lower() or ("open" if dev_mode else "closed")
    if mode not in MODES:
        raise SettingsError(f"HUBSTACK_EGRESS={mode!r} is not known: use closed (the default outside dev mode) or open")
    allow = tuple(h.lower() for h in parse.items(raw["HUBSTACK_EGRESS_ALLOW"]))
    for host in allow:
        if not HOST_NAME.fullmatch(host) or host.strip(".").replace(".", "").isdigit():
            raise SettingsError(
                f"HUBSTACK_EGRESS_ALLOW has {host!r}: give host names, e.g. pypi.org or .example.org (with subdomains)"
            )
    dns = tuple(parse.address("HUBSTACK_EGRESS_DNS", a) for a in parse.items(raw["HUBSTACK_EGRESS_DNS"]))
    try:
        pool = ipaddress.ip_network(raw["HUBSTACK_USER_SUBNETS"].strip())
    except ValueError:
        pool = None
    if pool is None or pool.version != 4 or not pool.is_private or not 8 <= pool.prefixlen <= 24:
        raise SettingsError(
            f"HUBSTACK_USER_SUBNETS={raw['HUBSTACK_USER_SUBNETS']!r} is not a private IPv4 range from /8 to /24: "
            "use e.g. 10.213.0.0/16 (one /28 per running server)"
        )
    return Egress(mode=mode, allow=allow, dns=dns, pool=str(pool))


def network_options(network):
    """How a user network is made (docker-py's create_network keywords, less ipam and labels)."""
    return {
        "driver": "bridge",
        "internal": True,  # no route out
        # No address of the host on the bridge: the host's own services are out of reach too.
        "options": {
            "com.docker.network.bridge.inhibit_ipv4": "true",
            "com.docker.network.bridge.name": bridge_name(network),
        },
    }


def bridge_name(network):
    """A Linux bridge name (at most 15 characters) for a user network, the same every time."""
    return USER_BRIDGE_PREFIX + hashlib.sha256(network.encode()).hexdigest()[:12]


def free_subnet(pool, networks):
    """The first /28 of pool that overlaps no subnet of the engine's networks; None if the pool is full.

    networks: the engine's list of networks (docker-py's APIClient.networks()).
    """
    taken = [c["Subnet"] for n in networks for c in (n.get("IPAM") or {}).get("Config") or [] if c.get("Subnet")]
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    for subnet in ipaddress.ip_network(pool).subnets(new_prefix=USER_PREFIX):
        if not any(subnet.overlaps(u) for u in used):
            return str(subnet)
    return None


def attached(network_attrs):
    """Names of the containers on a network, from the engine's attributes of it."""
    return {c.get("Name") for c in (network_attrs.get("Containers") or {}).values()}


def reattach(client, names):
    """Attach the hub and the egress container to every user network of the instance that lacks them.

    A container made again (an upgrade, new settings) starts on the stack's
    network only; the running servers' own networks are joined here, by the
    CLI after `up` and by the hub when it starts. client: docker.DockerClient.
    """
    wanted = ((names.hub_container, HUB_SERVICE), (names.egress_container, EGRESS_SERVICE))
    for network in client.networks.list(filters=names.label_filter(Role.USER_NETWORK)):
        network.reload()
        present = attached(network.attrs)
        for container, alias in wanted:
            if container not in present:
                try:
                    network.connect(container, aliases=[alias])
                except Exception:  # noqa: BLE001 - that container is not running: it joins when it starts
                    pass
