"""Docker's disk: how much each home may hold, and how much must stay free for the hub.

The hub's database and audit log live on the hub data volume, on the same
filesystem as every home and container layer (Docker's data root). The hub
refuses a new spawn while less than HUBSTACK_MIN_FREE_DISK is free there, so
they always have room; with HUBSTACK_HOME_QUOTA a new home also needs its whole
quota free above that threshold (homes are reserved in full: README.md, "Disk").
"""

from dataclasses import dataclass

from . import parse

GIB = 1024**3


def gib(n):
    return f"{n / GIB:.1f} GiB"


@dataclass(frozen=True)
class DiskPolicy:
    home_quota: int | None = None  # bytes of each home; None: no quota
    min_free_bytes: int = 5 * GIB
    min_free_percent: float | None = None  # instead of min_free_bytes

    def floor(self, total):
        """Bytes that must stay free on a disk of total bytes."""
        if self.min_free_percent is not None:
            return int(total * self.min_free_percent / 100)
        return self.min_free_bytes

    @property
    def threshold(self):
        """HUBSTACK_MIN_FREE_DISK as a person reads it."""
        if self.min_free_percent is not None:
            return f"{self.min_free_percent:g}%"
        return parse.shown_size(self.min_free_bytes) if self.min_free_bytes else "0"

    def shortfall(self, free, total, new_home=False):
        """Why a spawn must wait, or None when it fits: free space stays above the floor (with a new
        home's reservation taken)."""
        floor = self.floor(total)
        needs = self.home_quota if new_home and self.home_quota else 0
        if free - needs >= floor:
            return None
        if needs:
            return (
                f"{gib(free)} free on Docker's disk: a new home of {gib(needs)} would leave less than "
                f"HUBSTACK_MIN_FREE_DISK={self.threshold}"
            )
        return f"{gib(free)} free on Docker's disk, under HUBSTACK_MIN_FREE_DISK={self.threshold}"


def load(raw):
    min_bytes, percent = parse.size_or_percent("HUBSTACK_MIN_FREE_DISK", raw["HUBSTACK_MIN_FREE_DISK"], "5G or 10%")
    return DiskPolicy(
        home_quota=parse.size_or_off("HUBSTACK_HOME_QUOTA", raw["HUBSTACK_HOME_QUOTA"], 64 * 1024**2, "size", "10G"),
        min_free_bytes=min_bytes or 0,
        min_free_percent=percent,
    )
