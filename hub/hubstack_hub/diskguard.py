"""No new server while Docker's disk is short, so the hub's database and audit log keep room.

The hub data volume lives on Docker's disk, beside every home and container
layer: its free space is Docker's (hubstack.common.disk). A refused spawn is an
audit line (event `spawn-disk`) and a page that tells the researcher their
files are safe and the operator must act.
"""

import shutil

from jupyterhub.spawner import SpawnException

from hubstack.common.contract import HUB_DATA

from .decision import Decision

MESSAGE = (
    "The hub is short of disk space, so no server can start right now. Your files are safe. "
    "The hub's operator has been told in the hub's audit log; please let them know too, and try again later."
)


class DiskGuard:
    def __init__(self, policy, audit, path=HUB_DATA):
        self.policy, self.audit, self.path = policy, audit, path

    def usage(self):
        return shutil.disk_usage(self.path)

    def check(self, user):
        """Raise a SpawnException (507) while less than HUBSTACK_MIN_FREE_DISK is free."""
        usage = self.usage()
        why = self.policy.shortfall(usage.free, usage.total)
        if why is not None:
            self.refuse(user, why, usage)

    def refuse(self, user, why, usage=None, message=MESSAGE):
        """Audit why this spawn cannot be, and tell the researcher."""
        usage = usage or self.usage()
        self.audit.write(
            "spawn-disk", user, Decision("refused", "disk", why), 0, free_bytes=usage.free, total_bytes=usage.total
        )
        raise SpawnException(message, reason="disk", status_code=507, log_message=why)
