"""What an approval source says about one person, and one answer from several.

Five outcomes, never confused: approved, denied (no approval on record),
expired (an approval that ended), unavailable (a source could not give an
answer we trust: timeout, refused connection, 5xx, rejected credentials, a
body we do not understand), and unconfirmed (unavailable for longer than the
cache plus the outage grace).
"""

from dataclasses import dataclass

APPROVED, DENIED, EXPIRED, UNAVAILABLE = "approved", "denied", "expired", "unavailable"
UNCONFIRMED = "unconfirmed"  # unavailable past the cache and the outage grace: access ends, not a denial


@dataclass(frozen=True)
class Decision:
    outcome: str
    source: str  # registry, list, cache, identity
    reason: str  # our own words: never a URL, token, signature or response body

    @property
    def approved(self):
        return self.outcome == APPROVED


def combine(decisions):
    """One decision from the answers of every source asked (none approved)."""
    for outcome in (UNAVAILABLE, EXPIRED, DENIED):
        found = [d for d in decisions if d.outcome == outcome]
        if found:
            return found[0]
    return Decision(DENIED, "none", "no approval source is configured")
