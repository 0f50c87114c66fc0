"""The proxy's requests in the audit log, each with the researcher it came from.

squid writes one line per request to the egress log volume (time, client
address, method, URL, status, bytes, squid's result code); the hub reads the
new lines every few seconds and writes each as an `egress` audit line naming
the user whose server has that address (each server is alone on its network).
"""

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit

from .decision import Decision

INTERVAL = 3  # seconds between two reads of the proxy's log


def parse(line):
    """{client, method, url, host, status, bytes, allowed} of one access.log line, or None."""
    parts = line.split()
    if len(parts) < 7 or not parts[4].isdigit() or not parts[5].isdigit():
        return None
    _, client, method, url, status, size, result = parts[:7]
    host = url.rsplit(":", 1)[0] if method == "CONNECT" else (urlsplit(url).hostname or url)
    return {
        "client": client,
        "method": method,
        "url": url,
        "host": host,
        "status": int(status),
        "bytes": int(size),
        "allowed": not result.startswith("TCP_DENIED"),
    }


def server_addresses():
    """{IP: user name} of every server the hub knows, as the spawners report them."""
    from jupyterhub.app import JupyterHub

    users = JupyterHub.instance().users.values()
    return {s.server.ip: u.name for u in users for s in u.spawners.values() if s.server is not None and s.server.ip}


class EgressAudit:
    def __init__(self, path, audit, addresses):
        """addresses: a callable giving {IP: user name} of the running servers."""
        self.path, self.audit, self.addresses = Path(path), audit, addresses
        self.offset, self.inode = 0, None
        self.task = None

    def __deepcopy__(self, memo):
        return self  # one reader per hub: traitlets copies config values into each spawner

    def start(self):
        """Audit what comes from now on (what came before a restart of the hub was audited then)."""
        if self.task is None:
            try:
                stat = self.path.stat()
                self.inode, self.offset = stat.st_ino, stat.st_size
            except FileNotFoundError:
                pass
            self.task = asyncio.ensure_future(self.forever())

    def read_new(self):
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        records = []
        if stat.st_ino != self.inode or stat.st_size < self.offset:
            records = self.rest_of_rotated()  # squid rotated it: the old file's last lines first
            self.inode, self.offset = stat.st_ino, 0
        text = self.read_from(self.path, self.offset)
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        return records + [r for r in map(parse, complete.splitlines()) if r]

    def rest_of_rotated(self):
        rotated = self.path.with_name(self.path.name + ".0")
        try:
            if self.inode is None or rotated.stat().st_ino != self.inode:
                return []
        except FileNotFoundError:
            return []
        return [r for r in map(parse, self.read_from(rotated, self.offset).splitlines()) if r]

    @staticmethod
    def read_from(path, offset):
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def write(self, records):
        who = self.addresses()
        for r in records:
            outcome = "allowed" if r["allowed"] else "refused"
            reason = f"{r['method']} {r['url']} -> {r['status']}"
            self.audit.write(
                "egress",
                who.get(r["client"], f"unknown ({r['client']})"),
                Decision(outcome, "proxy", reason),
                0,
                host=r["host"],
                status=r["status"],
                bytes=r["bytes"],
            )

    async def forever(self):
        while True:
            try:
                self.write(self.read_new())
            except Exception:
                logging.getLogger("JupyterHub").exception("Reading the egress proxy's log failed")
            await asyncio.sleep(INTERVAL)
