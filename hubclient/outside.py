"""An "outside world" on this machine, reached the way user servers would reach the internet.

A network namespace holds OUTSIDE (198.51.100.10, TEST-NET-2) on a veth pair
from the host, so traffic to it goes through the host's routing and Docker's
NAT like traffic to any public address. In it run HTTP on 80 and HTTPS on
443 (outside_world.py, serving a folder) and a DNS server that records every
question and answers with OUTSIDE (egress/sinkhole.py, the one the egress
container runs). Optionally 169.254.169.254 is routed to it as a stand-in for
a cloud metadata service. Used by the egress tests and benchmark; needs root.
Only one exists at a time: whatever an interrupted run left is removed first.
"""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

OUTSIDE, HOST_SIDE, METADATA = "198.51.100.10", "198.51.100.1", "169.254.169.254"
NETNS, VETH_HOST, VETH_OUT = "hubstack-out", "hubstack-oh", "hubstack-oo"
REPO = Path(__file__).resolve().parents[1]
SERVERS = Path(__file__).with_name("outside_world.py")
SINKHOLE = REPO / "egress" / "sinkhole.py"


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def self_signed(folder, names):
    """chain.pem and key.pem for names, signed by nothing (for clients that do not verify)."""
    subject = f"/CN={names[0]}"
    alt = ",".join(f"DNS:{n}" for n in names)
    sh(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", subject, "-addext", f"subjectAltName={alt}",
        "-keyout", str(folder / "key.pem"), "-out", str(folder / "chain.pem"),
    )  # fmt: skip


class OutsideWorld:
    """with OutsideWorld(www, certs, dns_log, answer_for={name: address}, metadata=True): ..."""

    def __init__(self, www, certs, dns_log, answer_for=None, metadata=False):
        self.www, self.certs, self.dns_log = Path(www), Path(certs), Path(dns_log)
        self.answer_for = answer_for or {}
        self.metadata = metadata
        self.processes = []

    def __enter__(self):
        remove()
        self.dns_log.touch()
        sh("ip", "netns", "add", NETNS)
        try:
            self._wire()
            inside = ("ip", "netns", "exec", NETNS)
            serve = [sys.executable, str(SERVERS), str(self.www), str(self.certs)]
            self.processes.append(subprocess.Popen([*inside, *serve]))
            named = [f"--answer-for={name}={address}" for name, address in self.answer_for.items()]
            dns = [sys.executable, str(SINKHOLE), "--answer", OUTSIDE, "--log", str(self.dns_log), *named]
            self.processes.append(subprocess.Popen([*inside, *dns]))
            deadline = time.monotonic() + 30
            while not answers(f"http://{OUTSIDE}/"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the outside world at {OUTSIDE} did not answer within 30 s")
                time.sleep(0.5)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wire(self):
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_OUT)
        sh("ip", "link", "set", VETH_OUT, "netns", NETNS)
        sh("ip", "addr", "add", f"{HOST_SIDE}/32", "peer", f"{OUTSIDE}/32", "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "up")
        inside = ("ip", "netns", "exec", NETNS)
        sh(*inside, "ip", "addr", "add", f"{OUTSIDE}/32", "peer", f"{HOST_SIDE}/32", "dev", VETH_OUT)
        sh(*inside, "ip", "link", "set", VETH_OUT, "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        if self.metadata:
            sh(*inside, "ip", "addr", "add", f"{METADATA}/32", "dev", "lo")
            sh("ip", "route", "add", f"{METADATA}/32", "via", OUTSIDE, "dev", VETH_HOST)

    def __exit__(self, *exc):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        remove()


def remove():
    """Everything an outside world adds to the host, whether or not one is there."""
    sh("ip", "route", "del", f"{METADATA}/32", "via", OUTSIDE, check=False)
    sh("ip", "link", "del", VETH_HOST, check=False)
    for pid in sh("ip", "netns", "pids", NETNS, check=False).stdout.split():
        sh("kill", pid, check=False)
    sh("ip", "netns", "del", NETNS, check=False)
