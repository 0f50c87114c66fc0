"""Closed egress, the pure parts: settings, the subnets of user networks, squid's rules, the DNS answers."""

import importlib.machinery
import importlib.util
import struct
import sys
from pathlib import Path

import pytest

from hubstack.common.egress import bridge_name, free_subnet
from hubstack.common.parse import SettingsError
from hubstack.common.settings import load
from hubstack_hub.egresslog import parse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "egress"))
import sinkhole  # noqa: E402


def egress_script():
    loader = importlib.machinery.SourceFileLoader("hubstack_egress", str(REPO / "egress/hubstack-egress"))
    spec = importlib.util.spec_from_loader("hubstack_egress", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_closed_outside_dev_mode_open_in_dev_mode_unless_said():
    assert load(environ={}).egress.closed
    assert not load(environ={"DEV_MODE": "1"}).egress.closed
    assert load(environ={"DEV_MODE": "1", "HUBSTACK_EGRESS": "closed"}).egress.closed
    allowed = load(environ={"HUBSTACK_EGRESS_ALLOW": "PyPI.org, .example.org"}).egress.allow
    assert allowed == ("pypi.org", ".example.org")


@pytest.mark.parametrize(
    "environ,says",
    [
        ({"HUBSTACK_EGRESS": "half"}, "HUBSTACK_EGRESS='half' is not known"),
        ({"HUBSTACK_EGRESS_ALLOW": "https://pypi.org"}, "give host names"),
        ({"HUBSTACK_EGRESS_ALLOW": "10.0.0.1"}, "give host names"),
        ({"HUBSTACK_EGRESS_ALLOW": "*.example.org"}, "give host names"),
        ({"HUBSTACK_USER_SUBNETS": "8.8.0.0/16"}, "is not a private IPv4 range"),
        ({"HUBSTACK_USER_SUBNETS": "10.213.0.0/28"}, "is not a private IPv4 range"),
        ({"HUBSTACK_EGRESS_DNS": "dns.example.org"}, "is not an IP address"),
    ],
)
def test_bad_egress_settings_are_one_line(environ, says):
    with pytest.raises(SettingsError, match=says.replace("(", r"\(").replace("*", r"\*")):
        load(environ=environ)


def test_each_user_network_gets_a_free_slash_28_and_a_stable_bridge_name():
    def engine(*subnets):  # the engine's network list, as APIClient.networks() gives it
        return [{"Name": "other", "IPAM": {"Config": [{"Subnet": s}]}} for s in subnets] + [{"IPAM": None}]

    assert free_subnet("10.213.0.0/16", engine()) == "10.213.0.0/28"
    assert free_subnet("10.213.0.0/16", engine("10.213.0.0/28", "10.213.0.16/28")) == "10.213.0.32/28"
    assert free_subnet("10.213.0.0/16", engine("10.213.0.0/24")) == "10.213.1.0/28"  # overlaps count, not only equals
    assert free_subnet("10.213.0.0/24", engine("10.0.0.0/8")) is None
    name = bridge_name("hubstack-net-jane-40example-2eorg")
    assert name == bridge_name("hubstack-net-jane-40example-2eorg") and len(name) == 15 and name.startswith("hsu")
    assert name != bridge_name("hubstack-net-john-40example-2eorg")


def test_squid_refuses_names_off_the_list_before_it_would_resolve_them():
    egress = load(environ={"HUBSTACK_EGRESS_ALLOW": "pypi.org", "HUBSTACK_EGRESS_DNS": "198.51.100.10"}).egress
    rules = egress_script().squid_conf(egress, ["192.0.2.2"]).splitlines()
    access = [line for line in rules if line.startswith("http_access")]
    assert access.index("http_access deny !allowed_sites") < access.index("http_access deny to_private")
    assert access[-1] == "http_access deny all" and "acl to_host dst 192.0.2.2" in rules
    assert "acl to_private dst" in "\n".join(rules) and "169.254.0.0/16" in "\n".join(rules)
    assert "http_access deny CONNECT !tls_port" in access and "dns_nameservers 198.51.100.10" in rules
    nothing = egress_script().squid_conf(load(environ={}).egress, [])
    assert "acl allowed_sites dstdomain -n .invalid" in nothing  # an empty list allows no name at all


def query(name, qtype=1):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def test_the_sinkhole_says_no_such_name_and_the_recorder_answers_with_its_address():
    message = query("leak.example.org")
    name, qtype, end = sinkhole.question(message)
    assert (name, qtype) == ("leak.example.org.", 1)
    reply = sinkhole.answer(message, end)
    assert struct.unpack("!H", reply[:2])[0] == 0x1234 and reply[3] & 0x0F == sinkhole.NXDOMAIN
    answered = sinkhole.answer(message, end, "198.51.100.10")
    assert answered[3] & 0x0F == 0 and answered.endswith(bytes([198, 51, 100, 10]))
    assert sinkhole.question(b"\x00" * 5) is None


def test_proxy_log_lines_are_read_as_requests():
    allowed = parse("1764660000.123 10.213.0.2 GET http://pypi.org/simple/ 200 5120 TCP_MISS/200")
    assert allowed == {
        "client": "10.213.0.2",
        "method": "GET",
        "url": "http://pypi.org/simple/",
        "host": "pypi.org",
        "status": 200,
        "bytes": 5120,
        "allowed": True,
    }
    refused = parse("1764660000.456 10.213.0.2 CONNECT evil.example:443 403 3900 TCP_DENIED/403")
    assert refused["host"] == "evil.example" and refused["allowed"] is False
    assert parse("garbage line") is None


LINE = "1700000000.000 10.213.0.2 GET http://allowed.test/{n} 200 {n} TCP_MISS\n"


def test_the_audit_reader_loses_no_line_when_squid_rotates_its_log(tmp_path):
    from hubstack_hub.egresslog import EgressAudit

    log = tmp_path / "access.log"
    log.write_text(LINE.format(n=1))
    reader = EgressAudit(log, audit=None, addresses=dict)
    reader.inode = log.stat().st_ino  # what start() records
    assert [r["bytes"] for r in reader.read_new()] == [1]
    with open(log, "a") as f:
        f.write(LINE.format(n=2) + LINE.format(n=3))
    log.rename(tmp_path / "access.log.0")  # squid's rotation: written before it, not yet read
    log.write_text(LINE.format(n=4))
    assert [r["bytes"] for r in reader.read_new()] == [2, 3, 4]
    with open(log, "a") as f:
        f.write(LINE.format(n=5))
    assert [r["bytes"] for r in reader.read_new()] == [5]


def test_the_dns_log_is_rotated_keeping_the_newest_files(tmp_path):
    egress = egress_script()
    log = tmp_path / "dns.log"
    for n in range(egress.KEEP + 2):
        log.write_text(f"generation {n}\n")
        egress.rotate_file(str(log))
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == [f"dns.log.{n}" for n in range(egress.KEEP)]
    assert (tmp_path / "dns.log.0").read_text() == f"generation {egress.KEEP + 1}\n"
    assert (tmp_path / f"dns.log.{egress.KEEP - 1}").read_text() == "generation 2\n"
