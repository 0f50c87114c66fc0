"""Closed egress end to end: what a researcher's kernel can reach, and what it cannot.

An "outside world" is built on this machine and reached the way the internet
is, through the host's routing and Docker's NAT: a network namespace holding
198.51.100.10 (TEST-NET-2) on a veth pair from the host, with HTTP on 80,
HTTPS on 443 (a test CA) and a DNS server that records every question (the
same sinkhole.py the egress container runs, answering with addresses), and
169.254.169.254 routed to it as a stand-in for a cloud metadata service.
Every refusal has its positive control in the same run: a throwaway
container on a plain bridge network reaches the same target.
"""

import json
import os
import subprocess
import threading
import time
import uuid
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest
from test_https import key_pem, make_ca, make_leaf, pem

from helpers import NAME, PORT, run_hubstack, wait_for
from hubclient import BrowserUser
from hubclient.outside import METADATA, OUTSIDE, OutsideWorld

ALLOWED, NEIGHBOUR, META_NAME, HOST_NAME = (
    "allowed.hubstack.test",
    "other.hubstack.test",
    "meta.hubstack.test",
    "host.hubstack.test",
)
HOST_PORT = 18089  # a service on every address of the host
HUB = f"http://127.0.0.1:{PORT}"


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def host_address():
    route = sh("ip", "-4", "route", "get", "192.0.2.255").stdout.split()
    return route[route.index("src") + 1]


@pytest.fixture(scope="module")
def outside(built_stack, tmp_path_factory):
    """The outside world, up for the module; everything it adds to the host is removed after."""
    if os.geteuid() != 0:
        pytest.fail("the egress tests build an outside network namespace: run them as root (CI does)")
    folder = tmp_path_factory.mktemp("outside")
    www = folder / "www"
    www.mkdir()
    (www / "index.html").write_text("outside-world\n")
    ca_key, ca = make_ca("hubstack CI outside CA")
    leaf_key, leaf = make_leaf((ca_key, ca), [ALLOWED, NEIGHBOUR])
    (folder / "ca.pem").write_bytes(pem(ca))
    (folder / "chain.pem").write_bytes(pem(leaf) + pem(ca))
    (folder / "key.pem").write_bytes(key_pem(leaf_key))
    answer_for = {META_NAME: METADATA, HOST_NAME: host_address()}
    with OutsideWorld(www, folder, folder / "dns.log", answer_for, metadata=True):
        yield {"ca": (folder / "ca.pem").read_text(), "dns_log": folder / "dns.log", "folder": folder}


@pytest.fixture(scope="module")
def host_service():
    """A web server on every address of the host: user servers must not reach it."""
    server = HTTPServer(("0.0.0.0", HOST_PORT), SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield
    server.shutdown()


PROBE = r"""
import json, socket, sys, urllib.request
def tcp(host, port, timeout=3):
    s = socket.socket(); s.settimeout(timeout)
    try:
        s.connect((host, port)); return "connected"
    except OSError as err:
        return type(err).__name__
    finally:
        s.close()
def http(url, timeout=8, proxy=None, cafile=None):
    import ssl
    handlers = [urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})]
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    if context: handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")[:40]
    except urllib.error.HTTPError as err:
        return err.code, ""
    except Exception as err:
        return type(err).__name__, ""
def resolve(name):
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, 80)})
    except OSError as err:
        return type(err).__name__
"""


def control(docker_client, settings, code, network, dns=None):
    """Run PROBE + code in a throwaway container of the notebook image on a plain bridge network."""
    out = docker_client.containers.run(
        settings.names.image("notebook"),
        ["python3", "-c", PROBE + code],
        entrypoint=[],
        network=network,
        dns=[dns] if dns else None,
        remove=True,
    )
    return json.loads(out.decode().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def plain_network(docker_client):
    for leftover in docker_client.networks.list(names=[f"{NAME}-plain-control"]):
        leftover.remove()
    network = docker_client.networks.create(f"{NAME}-plain-control", driver="bridge")
    yield network.name
    network.remove()


@pytest.fixture(scope="module")
def closed(outside, host_service, docker_client, settings):
    env = {
        "HUBSTACK_EGRESS": "closed",
        "HUBSTACK_EGRESS_ALLOW": f"{ALLOWED},{META_NAME},{HOST_NAME}",
        "HUBSTACK_EGRESS_DNS": OUTSIDE,  # the proxy resolves allowed names through the outside resolver
    }
    run_hubstack("up", env=env, timeout=600)
    people = {}
    yield {"env": env, "people": people}
    for person in people.values():
        person.stop_server()
    run_hubstack("up", timeout=600)  # back to the test hub's own settings, which the other modules use
    leftover = [
        n.name
        for person in people
        for n in docker_client.networks.list(filters=settings.names.label_filter("user-network", user=person))
    ]
    assert leftover == [], leftover  # each server's network went with it


def researcher(closed, name):
    if name not in closed["people"]:
        closed["people"][name] = BrowserUser.with_server(HUB, name)
    return closed["people"][name]


def in_kernel(person, code):
    kernel = person.start_kernel()
    out, error = person.run(kernel["id"], PROBE + code, timeout=120)
    assert error is None, error
    return json.loads(out.strip().splitlines()[-1])


def test_the_outside_is_reachable_from_a_plain_network(outside, host_service, docker_client, settings, plain_network):
    """The positive controls: without hubstack's closed network, everything below would get through."""
    seen = control(
        docker_client,
        settings,
        f"print(json.dumps([tcp({OUTSIDE!r}, 80), tcp({METADATA!r}, 80), tcp({host_address()!r}, {HOST_PORT}),"
        f" resolve('control-{uuid.uuid4().hex[:8]}.hubstack.test')]))",
        plain_network,
        dns=OUTSIDE,
    )
    assert seen[:3] == ["connected"] * 3, seen
    assert seen[3] == [OUTSIDE]
    assert "control-" in outside["dns_log"].read_text()


def test_a_kernel_reaches_nothing_directly(closed, outside):
    person = researcher(closed, "egress-ann")
    seen = in_kernel(
        person,
        f"print(json.dumps({{'outside': tcp({OUTSIDE!r}, 80), 'outside_tls': tcp({OUTSIDE!r}, 443),"
        f" 'metadata': tcp({METADATA!r}, 80), 'host': tcp({host_address()!r}, {HOST_PORT})}}))",
    )
    assert set(seen.values()) <= {"TimeoutError", "OSError", "ConnectionRefusedError"}, seen
    assert "connected" not in seen.values()


def test_the_allowed_host_works_through_the_proxy_and_nothing_else(closed, outside, docker_client, settings):
    person = researcher(closed, "egress-ann")
    ca = json.dumps(outside["ca"])
    seen = in_kernel(
        person,
        "import os, tempfile\n"
        f"ca = tempfile.NamedTemporaryFile('w', suffix='.pem', delete=False); ca.write({ca}); ca.close()\n"
        "proxy = os.environ['HTTP_PROXY']\n"
        f"print(json.dumps({{'allowed': http('http://{ALLOWED}/', proxy=proxy),"
        f" 'allowed_tls': http('https://{ALLOWED}/', proxy=proxy, cafile=ca.name),"
        f" 'neighbour': http('http://{NEIGHBOUR}/', proxy=proxy),"
        f" 'neighbour_tls': http('https://{NEIGHBOUR}/', proxy=proxy, cafile=ca.name),"
        f" 'metadata': http('http://{METADATA}/', proxy=proxy),"
        f" 'metadata_by_name': http('http://{META_NAME}/', proxy=proxy),"
        f" 'host_by_name': http('http://{HOST_NAME}:{HOST_PORT}/', proxy=proxy),"
        f" 'host_by_name_80': http('http://{HOST_NAME}/', proxy=proxy)}}))",
    )
    assert seen["allowed"] == [200, "outside-world\n"] and seen["allowed_tls"] == [200, "outside-world\n"], seen
    assert seen["neighbour"][0] == 403 and seen["metadata"][0] == 403 and seen["metadata_by_name"][0] == 403
    assert seen["host_by_name"][0] == 403 and seen["host_by_name_80"][0] == 403
    assert seen["neighbour_tls"][0] != 200
    log = docker_client.containers.get(settings.names.egress_container).exec_run(
        ["cat", "/var/log/hubstack-egress/access.log"]
    )
    lines = log.output.decode().splitlines()
    assert any(f"http://{ALLOWED}/ 200" in line for line in lines), lines
    assert any(f"{ALLOWED}:443 200" in line for line in lines), lines
    assert any(f"http://{NEIGHBOUR}/ 403" in line for line in lines), lines
    # A name refused by the list was never looked up: it reached no resolver.
    assert NEIGHBOUR not in outside["dns_log"].read_text()
    # Each request is an audit line naming the researcher, the host, the outcome and the bytes.
    hub = docker_client.containers.get(settings.names.hub_container)

    def audited():
        lines = hub.exec_run(["cat", "/srv/jupyterhub/audit/access.jsonl"]).output.decode().splitlines()
        return [json.loads(line) for line in lines if '"egress"' in line]

    wait_for(lambda: any(r["host"] == NEIGHBOUR for r in audited()), 30, "the proxy's lines in the audit log")
    mine = [r for r in audited() if r["user"] == "egress-ann"]
    assert {(r["host"], r["decision"]) for r in mine} >= {(ALLOWED, "allowed"), (NEIGHBOUR, "refused")}
    assert all(r["bytes"] >= 0 and r["status"] for r in mine)


def test_names_resolve_only_to_the_hub_and_the_proxy_and_never_reach_an_outside_resolver(closed, outside):
    person = researcher(closed, "egress-ann")
    secret = f"leak-{uuid.uuid4().hex}.hubstack.test"
    seen = in_kernel(person, f"print(json.dumps([resolve({secret!r}), resolve('hub'), resolve('egress')]))")
    assert seen[0] == "gaierror"
    assert isinstance(seen[1], list) and isinstance(seen[2], list)
    time.sleep(2)
    assert secret not in outside["dns_log"].read_text()


def test_researchers_cannot_reach_each_other(closed, docker_client, settings, plain_network):
    ann, ben = researcher(closed, "egress-ann"), researcher(closed, "egress-ben")
    (ben_container,) = docker_client.containers.list(
        filters=settings.names.label_filter("user-server", user="egress-ben")
    )
    ben_ip = next(iter(ben_container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    seen = in_kernel(ann, f"print(json.dumps([tcp({ben_ip!r}, p) for p in (8888, 8081, 22, 80, 3128)]))")
    assert "connected" not in seen, seen
    # The control: two containers on one plain network do reach each other.
    peer = docker_client.containers.run(
        settings.names.image("notebook"),
        ["python3", "-m", "http.server", "8888"],
        entrypoint=[],
        network=plain_network,
        detach=True,
    )
    try:
        peer.reload()
        peer_ip = peer.attrs["NetworkSettings"]["Networks"][plain_network]["IPAddress"]
        assert (
            control(docker_client, settings, f"print(json.dumps(tcp({peer_ip!r}, 8888)))", plain_network) == "connected"
        )
    finally:
        peer.remove(force=True)
    # Both still work: kernels, and the hub's routes to each.
    for person in (ann, ben):
        kernel = person.start_kernel()
        out, error = person.run(kernel["id"], "print(6 * 7)")
        assert error is None and out.strip() == "42"


def test_status_reports_the_egress_mode(closed):
    said = run_hubstack("status", "--json", env=closed["env"])
    report = json.loads(said.stdout)["egress"]
    assert report["mode"] == "closed" and report["proxy"] == "running" and report["user_networks"] >= 2


def test_jupyterlab_does_not_phone_home(closed):
    person = researcher(closed, "egress-ann")
    response = person.session.get(person.server_url + "lab/api/news", timeout=30)
    assert response.status_code == 200 and response.json().get("news") == []
    update = person.session.get(person.server_url + "lab/api/update", timeout=30)
    assert update.status_code == 200 and update.json().get("notification") is None


def test_doctor_tries_a_blocked_connection_and_reports_the_mode(closed):
    said = run_hubstack("doctor", "--dev", env=closed["env"], check=False)
    (row,) = [line for line in said.stdout.splitlines() if line.split()[1:2] == ["egress"]]
    assert "closed:" in row and "none reachable" in row, said.stdout
