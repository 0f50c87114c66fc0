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

from .audit import AuditLog, hub_log
from .decision import APPROVED, UNAVAILABLE, UNCONFIRMED, Decision, combine
from .sources import ApprovalList, Registry


# -- the chain -------------------------------------------------------------------------
class AccessChecker:
    def __init__(self, sources, cache_seconds, audit, clock=time.monotonic, outage_grace=None):
        self.sources, self.cache_seconds, self.audit, self.clock = list(sources), cache_seconds, audit, clock
        self.outage_grace = outage_grace  # seconds past the cache before "unconfirmed"; None: never
        # Keyed by (user, what): what is "" for the hub itself, or a dataset's name.
        self._approved = {}  # -> (clock time, Decision) of the last approval
        self._unavailable_since = {}  # -> clock time of the first unavailable answer in a row
        self._last = {}  # -> (clock time, Decision) of the last answer, whatever it was

    def __deepcopy__(self, memo):
        return self  # one checker per hub (its caches): traitlets copies config values

    async def decide(self, user, sources=None, what=""):
        """Ask the sources (default: the hub's own) in order; the first approval wins."""
        slot = (user, what)
        answers = []
        for source in self.sources if sources is None else sources:
            decision = await source.ask(user)
            if decision.approved:
                self._approved[slot] = (self.clock(), decision)
                self._unavailable_since.pop(slot, None)
                return decision
            answers.append(decision)
        decision = combine(answers)
        if decision.outcome != UNAVAILABLE:
            self._approved.pop(slot, None)
            self._unavailable_since.pop(slot, None)
            return decision
        now = self.clock()
        cached = self._approved.get(slot)
        if cached and now - cached[0] <= self.cache_seconds:
            age = now - cached[0]
            return Decision(APPROVED, "cache", f"{decision.reason}; approved by the {cached[1].source} {age:.0f} s ago")
        # Since when nobody could confirm: the last approval, or the first failure if none is known.
        since = cached[0] if cached else self._unavailable_since.setdefault(slot, now)
        if self.outage_grace is not None and now - since > self.cache_seconds + self.outage_grace:
            minutes = (now - since) / 60
            return Decision(
                UNCONFIRMED, decision.source, f"{decision.reason}; approval unconfirmed for {minutes:.0f} min"
            )
        return decision

    def last_decision(self, user, within):
        """The last decision about user if it is at most `within` seconds old, else None."""
        last = self._last.get((user, ""))
        return last[1] if last and self.clock() - last[0] <= within else None

    def recently_approved(self, user, within):
        cached = self._approved.get((user, ""))
        return bool(cached) and self.clock() - cached[0] <= within

    async def check(self, user, event, act=None):
        """Decide, act on the decision (act(decision), awaited, if given), then audit it.

        The audit line comes last, so that neither a slow nor a failing audit
        write ever holds up or prevents what the decision requires.
        """
        started = time.perf_counter()
        decision = await self.decide(user)
        latency = time.perf_counter() - started
        self._last[user, ""] = (self.clock(), decision)
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
    return AccessChecker(sources, login.cache_seconds, hub_log(login, audit_path), outage_grace=login.outage_grace)


# -- `hubstack access check EMAIL`, run inside the hub container -----------------------------


async def check_one(checker, email, gate=None):
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
        "datasets": await check_datasets(gate, email, checker.audit) if gate else [],
    }


ACCESS_EVENTS = ("login", "spawn", "refresh", "recheck")  # the hub deciding whether someone may use it


def newest_first(audit, lines):
    """The audit log's last lines as records, newest first; a line that is not JSON is skipped."""
    for line in reversed(audit.tail(lines)):
        try:
            yield json.loads(line)
        except ValueError:
            continue


def last_access_decisions(audit, lines=20000):
    """{user: record}: the newest access-check decision about each user in the log (not an
    operator's question: `hubstack access check` asks without deciding anything)."""
    found = {}
    for record in newest_first(audit, lines):
        if record.get("event") in ACCESS_EVENTS and isinstance(record.get("user"), str):
            found.setdefault(record["user"], record)
    return found


def last_dataset_decisions(audit, email, lines=20000):
    """{dataset: (time, outcome, source, reason)}: each dataset's newest decision about email in the
    log (a log-in or a start decides every dataset, a re-check only those mounted)."""
    found = {}
    for record in newest_first(audit, lines):
        if record.get("user") != email or not str(record.get("event", "")).endswith("-datasets"):
            continue
        for m in record.get("mounted", []):
            found.setdefault(m["dataset"], (record["time"], APPROVED, m["source"], ""))
        for r in record.get("refused", []):
            found.setdefault(r["dataset"], (record["time"], r["decision"], r["source"], r["reason"]))
    return found


async def check_datasets(gate, email, audit):
    """Each dataset's answer now; a passport's visas are only seen at log-in, so its last decision instead."""
    rows, last = [], None
    for dataset in gate.datasets:
        row = {"dataset": dataset.name, "grant": dataset.grant, "key": dataset.key}
        if dataset.grant == "passport":
            last = last_dataset_decisions(audit, email) if last is None else last
            when, outcome, source, reason = last.get(dataset.name, (None, "unknown", "passport", ""))
            said = f"at {when}: {reason or outcome}" if when else "no log-in of this user has been decided yet"
            rows.append(
                {**row, "outcome": outcome, "source": source, "reason": f"from the visas of the last log-in, {said}"}
            )
            continue
        started = time.perf_counter()
        (grant,), _ = await gate.decide(email, [dataset])
        rows.append(
            {
                **row,
                "outcome": grant.decision.outcome,
                "source": grant.decision.source,
                "reason": grant.decision.reason,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        )
    return rows


def main(argv):
    from hubstack.common import datasets
    from hubstack.common.contract import ACCESS_MOUNT, AUDIT_LOG, SECRETS_MOUNT
    from hubstack.common.parse import SettingsError
    from hubstack.common.policy import check_mode
    from hubstack.common.settings import load

    from .grants import build_gate

    if len(argv) == 2 and argv[0] == "log" and argv[1].isdigit():
        print("\n".join(AuditLog(AUDIT_LOG).tail(int(argv[1]))))
        return 0
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python3 -m hubstack_hub.access check EMAIL | log LINES", file=sys.stderr)
        return 2
    try:
        settings = load()
        login = check_mode(settings, SECRETS_MOUNT, ACCESS_MOUNT)
        catalogue = datasets.load(ACCESS_MOUNT, settings.raw["HUBSTACK_ACCESS_DIR"], check_folders=False)
    except SettingsError as err:
        print(json.dumps({"error": str(err)}))
        return 2
    if login is None:
        print(json.dumps({"error": "the hub runs in dev mode: there is no access check (anyone may log in)"}))
        return 2
    email = argv[1].strip().lower()
    checker = build_checker(login, AUDIT_LOG)
    gate = build_gate(catalogue, checker, timeout=login.registry_timeout)
    report = asyncio.run(check_one(checker, email, gate))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
