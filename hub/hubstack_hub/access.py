"""Who may have a server: approval sources asked in order, with an audit trail.

Five outcomes, never confused: approved, denied (no approval on record),
expired (an approval that ended), unavailable (a source could not give an
answer we trust: timeout, refused connection, 5xx, rejected credentials, a
body we do not understand), and unconfirmed (unavailable for longer than the
cache plus the outage grace). Unavailable never lets anyone in, except a user
whose approval was confirmed within the last few minutes (the positive cache),
and it is never reported to the user as a denial. Unconfirmed ends a running
user's access, as a denial does, and says why: not a decision about them.

`python3 -m hubstack_hub.access check EMAIL` (what `hubstack access check`
runs in the hub container) asks every configured source about one address.
"""

import asyncio
import csv
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

from hubstack.common.contract import AUDIT_FAILED

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


# -- the DACO registry over HTTP ---------------------------------------------
class Registry:
    """`GET <base>/search?entity-type=daco&entity-id=<email>&expand=details`.

    200 with a JSON list: a record whose entity-id is the address means
    approved (with require_cloud_access, only if its details say
    "cloud-access": true); an empty list, or 404, means no approval. Anything
    else is unavailable.
    """

    name = "registry"

    def __init__(self, base_url, auth, key, secret, timeout, require_cloud_access):
        self.base_url, self.auth, self.key, self.secret = base_url, auth, key, secret
        self.timeout, self.require_cloud_access = timeout, require_cloud_access
        self._http = None

    def request(self, email):
        """(url, headers) of the signed query for one address."""
        query = urlencode({"entity-type": "daco", "entity-id": email, "expand": "details"}, quote_via=quote)
        url = f"{self.base_url}/search?{query}"
        if self.auth == "bearer":
            return url, {"Authorization": f"Bearer {self.secret}", "Accept": "application/json"}
        from oauthlib import oauth1

        plaintext = self.auth == "oauth1-plaintext"
        # PLAINTEXT's "signature" is the consumer secret itself: never in a URL, which
        # proxies and access logs keep; HMAC-SHA1's signature reveals nothing.
        client = oauth1.Client(
            self.key,
            client_secret=self.secret,
            signature_method=oauth1.SIGNATURE_PLAINTEXT if plaintext else oauth1.SIGNATURE_HMAC_SHA1,
            signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER if plaintext else oauth1.SIGNATURE_TYPE_QUERY,
        )
        signed, headers, _ = client.sign(url, http_method="GET")
        return signed, {**headers, "Accept": "application/json"}

    @property
    def http(self):
        if self._http is None:
            from tornado.httpclient import AsyncHTTPClient

            # Our own client: a hanging registry must not queue the hub's other requests.
            self._http = AsyncHTTPClient(force_instance=True, max_clients=64)
        return self._http

    async def ask(self, email):
        from tornado.httpclient import HTTPClientError, HTTPRequest

        url, headers = self.request(email)
        request = HTTPRequest(
            url, headers=headers, connect_timeout=self.timeout, request_timeout=self.timeout, follow_redirects=False
        )
        try:
            response = await self.http.fetch(request, raise_error=False)
        except HTTPClientError as err:  # tornado raises timeouts (599) even with raise_error=False
            if err.code == 599 or err.response is None:
                return Decision(UNAVAILABLE, self.name, f"the registry did not answer within {self.timeout:g} s")
            response = err.response
        except OSError as err:  # refused, unreachable, unknown name
            return Decision(UNAVAILABLE, self.name, f"could not connect to the registry ({type(err).__name__})")
        except Exception as err:  # closed streams, TLS failures: never a 500 for the user
            return Decision(UNAVAILABLE, self.name, f"the registry did not answer ({type(err).__name__})")
        return self.judge(email, response.code, response.body)

    def judge(self, email, code, body):
        if code == 404:
            return Decision(DENIED, self.name, "the registry has no approval for this address")
        if code in (401, 403):
            return Decision(UNAVAILABLE, self.name, f"the registry refused the hub's credentials (HTTP {code})")
        if code != 200:
            return Decision(UNAVAILABLE, self.name, f"the registry answered HTTP {code}")
        try:
            records = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return Decision(UNAVAILABLE, self.name, "the registry answered with something that is not JSON")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return Decision(UNAVAILABLE, self.name, "the registry's answer is not a list of records")
        if not records:
            return Decision(DENIED, self.name, "the registry has no approval for this address")
        mine = [r for r in records if str(r.get("entity-id", "")).lower() == email.lower()]
        if not mine:
            return Decision(UNAVAILABLE, self.name, "the registry answered with records for another address")
        if not self.require_cloud_access:
            return Decision(APPROVED, self.name, "approved in the registry")
        details = mine[0].get("details")
        flag = details.get("cloud-access") if isinstance(details, dict) else None
        if flag is True:
            return Decision(APPROVED, self.name, "approved in the registry, with cloud access")
        if flag is False:
            return Decision(DENIED, self.name, "approved in the registry, but not for cloud access")
        return Decision(UNAVAILABLE, self.name, "the registry's record lacks the cloud-access flag")


# -- the operator's approval list ----------------------------------------------
class ApprovalList:
    """approvals.csv: email, approved until (YYYY-MM-DD, empty: no end), note.

    Re-read whenever the file changes. A line that cannot be read is skipped
    and reported (`warnings`), so one typo does not lock everyone out.
    """

    name = "list"

    def __init__(self, path, today=lambda: datetime.now(timezone.utc).date()):
        self.path, self.today = Path(path), today
        self._stamp, self._entries, self.warnings = None, {}, []

    def entries(self):
        st = self.path.stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            self._entries, self.warnings = parse_approvals(self.path.read_text(errors="replace"))
            self._stamp = stamp
        return self._entries

    async def ask(self, email):
        try:
            entries = self.entries()
        except OSError as err:
            return Decision(UNAVAILABLE, self.name, f"the approval list cannot be read ({err.strerror})")
        if email.lower() not in entries:
            return Decision(DENIED, self.name, "not on the approval list")
        until = entries[email.lower()]
        if until is None:
            return Decision(APPROVED, self.name, "on the approval list, with no end date")
        if self.today() <= until:
            return Decision(APPROVED, self.name, f"on the approval list until {until.isoformat()}")
        return Decision(EXPIRED, self.name, f"the approval ended on {until.isoformat()}")


def split_line(number, line, warnings):
    """One line's fields, on its own: a quote left open never reaches into the next line."""
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error:
        pass
    try:
        row = next(csv.reader([line], strict=False), [])
    except csv.Error as err:  # e.g. a field over csv's size limit
        warnings.append(f"line {number}: cannot be read ({err}); line skipped")
        return None
    warnings.append(f"line {number}: a quote is not closed; read as far as the line goes")
    return row


def parse_approvals(text):
    """{email: date or None}, [warnings]; the last line for an address wins.

    Each line is read alone, so a stray quote or an oversized field costs at
    most that line, never the meaning of the lines after it.
    """
    entries, warnings = {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        row = split_line(number, line, warnings)
        if row is None:
            continue
        if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
            continue
        email = row[0].strip().lower()
        if number == 1 and email == "email":
            continue  # header
        if "@" not in email or any(c.isspace() for c in email):
            warnings.append(f"line {number}: {row[0]!r} is not an e-mail address; line skipped")
            continue
        raw_until = row[1].strip() if len(row) > 1 else ""
        try:
            until = date.fromisoformat(raw_until) if raw_until else None
        except ValueError:
            warnings.append(f"line {number}: {raw_until!r} is not a date (YYYY-MM-DD); line skipped")
            continue
        if email in entries:
            warnings.append(f"line {number}: {email} is listed again; this line wins")
        entries[email] = until
    return entries, warnings


# -- the audit trail ----------------------------------------------------------------


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

    def write(self, event, user, decision, latency):
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "event": event,
            "user": user,
            "decision": decision.outcome,
            "source": decision.source,
            "reason": decision.reason,
            "latency_ms": round(latency * 1000, 1),
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
