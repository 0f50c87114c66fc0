"""The audit trail of access decisions: one JSON line each, rotated, never blocking."""

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from hubstack.common.contract import AUDIT_FAILED, AUDIT_LOG


class AuditLog:
    """One JSON line per decision, appended; never a token, secret or signature.

    The file is rotated when it reaches max_bytes: access.jsonl becomes
    access.jsonl.1, .1 becomes .2, ..., and the oldest beyond `keep` files
    goes. Renaming between two appends loses no line. A line that cannot be
    written (a full disk) is an error in the hub's log, never an exception:
    the decision it records has been acted on already.
    """

    def __init__(self, path, max_bytes=10 * 2**20, keep=50):
        self.path = Path(path) if path else None
        self.max_bytes, self.keep = max_bytes, keep
        self.failures = 0

    def __deepcopy__(self, memo):
        return self  # one log per hub: traitlets copies config values into each spawner

    def files(self):
        """Every file of the log, oldest first."""
        if self.path is None or not self.path.parent.is_dir():
            return []
        rotated = [p for p in self.path.parent.glob(f"{self.path.name}.*") if p.suffix[1:].isdigit()]
        rotated.sort(key=lambda p: -int(p.suffix[1:]))
        return [*rotated, *([self.path] if self.path.is_file() else [])]

    def rotate(self):
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        oldest.unlink(missing_ok=True)
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.is_file():
                older.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.rename(self.path.with_name(f"{self.path.name}.1"))

    def write(self, event, user, decision, latency, **details):
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "event": event,
            "user": user,
            "decision": decision.outcome,
            "source": decision.source,
            "reason": decision.reason,
            "latency_ms": round(latency * 1000, 1),
            **details,
        }
        if self.path is None:
            return record
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file() and self.path.stat().st_size >= self.max_bytes:
                self.rotate()
            with open(self.path, "a") as f:  # one short write per line: lines never interleave
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            self.failures += 1
            logging.getLogger("JupyterHub").error("%s (%s): %s", AUDIT_FAILED, err.strerror or err, json.dumps(record))
        return record

    def tail(self, lines):
        """The newest lines across the rotated files, oldest first."""
        newest = []
        for path in reversed(self.files()):
            newest = path.read_text(errors="replace").splitlines()[-(lines - len(newest)) :] + newest
            if len(newest) >= lines:
                break
        return newest[-lines:] if lines > 0 else []


def hub_log(login=None, path=AUDIT_LOG):
    """The hub's audit log, rotated as production's settings say (login), or by the defaults (dev mode)."""
    if login is None:
        return AuditLog(path)
    return AuditLog(path, max_bytes=login.audit_rotate_bytes, keep=login.audit_keep)
