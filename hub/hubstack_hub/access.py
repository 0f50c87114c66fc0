"""Who may have a server: approval sources asked in order, with an audit trail.

The outcomes are in hubstack_hub.decision, the sources in hubstack_hub.sources,
the audit trail in hubstack_hub.audit. Unavailable never lets anyone in, except
a user whose approval was confirmed within the last few minutes (the positive cache),
and it is never reported to the user as a denial. Unconfirmed ends a running
user's access, as a denial does, and says why: not a decision about them.

`python3 -m hubstack_hub.access check EMAIL` (what `hubstack access check`
runs in the hub container) asks every configured source about one address.
"""

import asyncio
import json
import sys
import time
from dataclasses import asdict

from .audit import AuditLog
from .decision import APPROVED, UNAVAILABLE, UNCONFIRMED, Decision, combine
from .sources import ApprovalList, Registry


# -- the chain -------------------------------------------------------------------------
class AccessChecker:
    def __init__(self, sources, cache_seconds, audit, clock=time.monotonic, outage_grace=None):
        self.sources, self.cache_seconds, self.audit, self.clock = list(sources), cache_seconds, audit, clock
        self.outage_grace = outage_grace  # seconds past the cache before "unconfirmed"; None: never
        self._approved = {}  # user -> (clock time, Decision) of the last approval
        self._unavailable_since = {}  # user -> clock time of the first unavailable answer in a row
        self._last = {}  # user -> (clock time, Decision) of the last answer, whatever it was

    async def decide(self, user):
        answers = []
        for source in self.sources:
            decision = await source.ask(user)
            if decision.approved:
                self._approved[user] = (self.clock(), decision)
                self._unavailable_since.pop(user, None)
                return decision
            answers.append(decision)
        decision = combine(answers)
        if decision.outcome != UNAVAILABLE:
            self._approved.pop(user, None)
            self._unavailable_since.pop(user, None)
            return decision
        now = self.clock()
        cached = self._approved.get(user)
        if cached and now - cached[0] <= self.cache_seconds:
            age = now - cached[0]
            return Decision(APPROVED, "cache", f"{decision.reason}; approved by the {cached[1].source} {age:.0f} s ago")
        # Since when nobody could confirm: the last approval, or the first failure if none is known.
        since = cached[0] if cached else self._unavailable_since.setdefault(user, now)
        if self.outage_grace is not None and now - since > self.cache_seconds + self.outage_grace:
            minutes = (now - since) / 60
            return Decision(
                UNCONFIRMED, decision.source, f"{decision.reason}; approval unconfirmed for {minutes:.0f} min"
            )
        return decision

    def last_decision(self, user, within):
        """The last decision about user if it is at most `within` seconds old, else None."""
        last = self._last.get(user)
        return last[1] if last and self.clock() - last[0] <= within else None

    def recently_approved(self, user, within):
        cached = self._approved.get(user)
        return bool(cached) and self.clock() - cached[0] <= within

    async def check(self, user, event, act=None):
        """Decide, act on the decision (act(decision), awaited, if given), then audit it.

        The audit line comes last, so that neither a slow nor a failing audit
        write ever holds up or prevents what the decision requires.
        """
        started = time.perf_counter()
        decision = await self.decide(user)
        latency = time.perf_counter() - started
        self._last[user] = (self.clock(), decision)
        try:
            if act is not None:
                await act(decision)
        finally:
            self.audit.write(event, user, decision, latency)
        return decision


def build_checker(login, audit_path):
    sources = []
    for name in login.sources:
        if name == "registry":
            sources.append(
                Registry(
                    login.registry_url,
                    login.registry_auth,
                    login.registry_key,
                    login.registry_secret,
                    login.registry_timeout,
                    login.require_cloud_access,
                )
            )
        elif name == "list":
            sources.append(ApprovalList(login.approval_list))
    audit = AuditLog(audit_path, max_bytes=login.audit_rotate_bytes, keep=login.audit_keep)
    return AccessChecker(sources, login.cache_seconds, audit, outage_grace=login.outage_grace)


# -- `hubstack access check EMAIL`, run inside the hub container -----------------------------


async def check_one(checker, email):
    answers, warnings = [], []
    for source in checker.sources:
        started = time.perf_counter()
        decision = await source.ask(email)
        answers.append({**asdict(decision), "latency_ms": round((time.perf_counter() - started) * 1000, 1)})
        warnings += getattr(source, "warnings", [])
    approved = [a for a in answers if a["outcome"] == APPROVED]
    final = (
        approved[0]
        if approved
        else asdict(combine([Decision(a["outcome"], a["source"], a["reason"]) for a in answers]))
    )
    checker.audit.write("operator-check", email, Decision(final["outcome"], final["source"], final["reason"]), 0)
    return {
        "user": email,
        "decision": final["outcome"],
        "source": final["source"],
        "reason": final["reason"],
        "sources": answers,
        "warnings": warnings,
    }


def main(argv):
    from hubstack.common.contract import ACCESS_MOUNT, AUDIT_LOG, SECRETS_MOUNT
    from hubstack.common.parse import SettingsError
    from hubstack.common.policy import check_mode
    from hubstack.common.settings import load

    if len(argv) == 2 and argv[0] == "log" and argv[1].isdigit():
        print("\n".join(AuditLog(AUDIT_LOG).tail(int(argv[1]))))
        return 0
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python3 -m hubstack_hub.access check EMAIL | log LINES", file=sys.stderr)
        return 2
    try:
        login = check_mode(load(), SECRETS_MOUNT, ACCESS_MOUNT)
    except SettingsError as err:
        print(json.dumps({"error": str(err)}))
        return 2
    if login is None:
        print(json.dumps({"error": "the hub runs in dev mode: there is no access check (anyone may log in)"}))
        return 2
    email = argv[1].strip().lower()
    report = asyncio.run(check_one(build_checker(login, AUDIT_LOG), email))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
