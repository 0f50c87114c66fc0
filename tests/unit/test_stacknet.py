"""Plain http only to loopback and to the stack's own containers (hubstack_hub.stacknet)."""

import socket

import pytest

from hubstack.common.parse import SettingsError
from hubstack_hub.stacknet import refuse_plain_http_off_the_stack, within

STACK = ["172.30.0.0/16"]
HOSTS = {"registry": "172.30.0.5", "intranet": "10.1.2.3"}


def resolve(host, port):
    if host not in HOSTS:
        raise socket.gaierror(-2, "Name or service not known")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (HOSTS[host], 0))]


def check(url):
    refuse_plain_http_off_the_stack(
        {"HUBSTACK_REGISTRY_URL": url}, "hubci-net", subnets=lambda n: STACK, resolve=resolve
    )


@pytest.mark.parametrize("url", ["http://registry:8080", "https://intranet/x", "http://127.0.0.1:9400/token", ""])
def test_the_stacks_containers_loopback_and_https_pass(url):
    check(url)


@pytest.mark.parametrize("url", ["http://intranet/api", "http://unknown:8080"])
def test_plain_http_to_anything_else_is_refused_with_one_line(url):
    with pytest.raises(
        SettingsError, match="is plain http, and .* is not a container on the stack's network hubci-net"
    ):
        check(url)


def test_within_needs_every_address_inside():
    assert within({"172.30.1.1"}, STACK) and not within({"172.30.1.1", "10.0.0.1"}, STACK) and not within(set(), STACK)
