import asyncio
import json
import os
from datetime import date
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
from oauthlib.oauth1.rfc5849.signature import verify_hmac_sha1, verify_plaintext
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape

from hubstack_hub.access import AccessChecker
from hubstack_hub.audit import AuditLog
from hubstack_hub.decision import APPROVED, DENIED, EXPIRED, UNAVAILABLE, UNCONFIRMED, Decision, combine
from hubstack_hub.identity import github_teams, primary_verified_email
from hubstack_hub.sources import ApprovalList, Registry, parse_approvals

EMAIL = "jane@example.org"
BASE = "https://registry.example.org/api"


def registry(auth="oauth1-hmac-sha1", secret="s3cret&key", cloud=False):
    return Registry(BASE, auth, "consumer-key", secret, 5, cloud)


def record(email=EMAIL, **details):
    return {"entity-id": email, "details": details} if details else {"entity-id": email}


# -- Registry.judge ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code,body,outcome",
    [
        (200, json.dumps([record()]), APPROVED),
        (200, json.dumps([record("JANE@Example.ORG")]), APPROVED),
        (200, b"[]", DENIED),
        (404, b"not found", DENIED),
        (500, b"oops", UNAVAILABLE),
        (502, b"", UNAVAILABLE),
        (200, b"<html>maintenance</html>", UNAVAILABLE),
        (200, b"", UNAVAILABLE),
        (200, b"\xff\xfe", UNAVAILABLE),
        (200, json.dumps(record()), UNAVAILABLE),  # an object, not a list
        (200, json.dumps([record(), "jane"]), UNAVAILABLE),  # a list with a non-record
        (200, json.dumps([record("john@example.org")]), UNAVAILABLE),
    ],
)
def test_judge(code, body, outcome):
    decision = registry().judge(EMAIL, code, body)
    assert decision.outcome == outcome
    assert decision.source == "registry"


def test_judge_matches_the_address_case_insensitively():
    assert registry().judge("Jane@EXAMPLE.org", 200, json.dumps([record()])).approved


@pytest.mark.parametrize("code", [401, 403])
def test_rejected_credentials_are_unavailable_not_denied(code):
    decision = registry().judge(EMAIL, code, b"")
    assert decision.outcome == UNAVAILABLE
    assert "credentials" in decision.reason and str(code) in decision.reason


def test_server_error_names_the_status():
    assert "HTTP 500" in registry().judge(EMAIL, 500, b"secret body").reason


def test_reason_never_repeats_the_body():
    body = json.dumps({"token": "leaked-token-value"})
    assert "leaked-token-value" not in registry().judge(EMAIL, 200, body).reason


@pytest.mark.parametrize(
    "details,outcome",
    [
        ({"cloud-access": True}, APPROVED),
        ({"cloud-access": False}, DENIED),
        ({}, UNAVAILABLE),
        ({"cloud-access": "true"}, UNAVAILABLE),
    ],
)
def test_require_cloud_access(details, outcome):
    body = json.dumps([{"entity-id": EMAIL, "details": details}])
    assert registry(cloud=True).judge(EMAIL, 200, body).outcome == outcome


def test_cloud_access_flag_ignored_unless_required():
    body = json.dumps([record(**{"cloud-access": False})])
    assert registry(cloud=False).judge(EMAIL, 200, body).approved


# -- Registry.request ----------------------------------------------------------------------
def split_signed(url, headers=None):
    """(uri without query, params without the signature, the signature), as oauthlib verifies them."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    auth = (headers or {}).get("Authorization", "")
    if auth.startswith("OAuth "):
        params += [(k, unescape(v)) for k, v in parse_authorization_header(auth) if k != "realm"]
    signature = [v for k, v in params if k == "oauth_signature"]
    assert len(signature) == 1
    uri = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return SimpleNamespace(
        uri=uri, http_method="GET", signature=signature[0], params=[(k, v) for k, v in params if k != "oauth_signature"]
    )


@pytest.mark.parametrize("auth", ["oauth1-plaintext", "oauth1-hmac-sha1", "bearer"])
def test_entity_id_is_percent_encoded(auth):
    url, _ = registry(auth).request("jane+x%y@example.org")
    assert url.startswith(f"{BASE}/search?")
    assert "entity-id=jane%2Bx%25y%40example.org" in url
    assert "entity-type=daco" in url and "expand=details" in url


@pytest.mark.parametrize(
    "auth,verify", [("oauth1-plaintext", verify_plaintext), ("oauth1-hmac-sha1", verify_hmac_sha1)]
)
def test_oauth1_signature_verifies_with_the_right_secret_only(auth, verify):
    url, headers = registry(auth, secret="s3cret&key").request("jane+x%y@example.org")
    request = split_signed(url, headers)
    assert ("oauth_consumer_key", "consumer-key") in request.params
    assert ("entity-id", "jane+x%y@example.org") in request.params
    assert verify(request, client_secret="s3cret&key")
    assert not verify(request, client_secret="wrong-secret")


def test_plaintext_sends_the_consumer_secret_in_the_header_never_in_the_url():
    url, headers = registry("oauth1-plaintext", secret="s3cretvalue").request(EMAIL)
    assert "s3cretvalue" not in url and "oauth_" not in url
    assert (
        headers["Authorization"].startswith("OAuth ")
        and 'oauth_signature_method="PLAINTEXT"' in headers["Authorization"]
    )


def test_hmac_never_puts_the_secret_in_the_url():
    url, headers = registry("oauth1-hmac-sha1", secret="s3cretvalue").request(EMAIL)
    assert "s3cretvalue" not in url
    assert "s3cretvalue" not in json.dumps(headers)
    assert ("oauth_signature_method", "HMAC-SHA1") in parse_qsl(urlsplit(url).query)


def test_bearer_token_goes_in_the_header_not_the_url():
    url, headers = registry("bearer", secret="tok-123").request(EMAIL)
    assert headers["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in url
    assert "oauth_" not in url


# -- parse_approvals -----------------------------------------------------------------------
def test_parse_approvals_reads_dates_and_skips_noise():
    text = "\n".join(
        [
            "email,approved_until,note",
            "# a comment",
            "",
            "Jane@Example.org,2025-06-30,PI",
            "john@example.org,,no end",
            "  ,  ,  ",
        ]
    )
    entries, warnings = parse_approvals(text)
    assert entries == {("jane@example.org", ""): date(2025, 6, 30), ("john@example.org", ""): None}
    assert warnings == []


def test_parse_approvals_skips_bad_lines_with_numbered_warnings():
    text = "email,approved_until\nnot-an-address,2025-01-01\nann@example.org,31/12/2025\nbob@example.org,2025-01-01\n"
    entries, warnings = parse_approvals(text)
    assert entries == {("bob@example.org", ""): date(2025, 1, 1)}
    assert len(warnings) == 2
    assert warnings[0].startswith("line 2:") and "not an e-mail address" in warnings[0]
    assert warnings[1].startswith("line 3:") and "not a date" in warnings[1]


def test_a_stray_quote_costs_no_other_line():
    text = (
        "email,approved_until,note\n"
        'jane@example.org,2027-06-30,"DACO-1234, renewed\n'
        "bob@example.org,,\n"
        'old@example.org,2030-01-01,"was approved\n'
        "old@example.org,2020-01-01,withdrawn\n"
    )
    entries, warnings = parse_approvals(text)
    assert entries == {
        ("jane@example.org", ""): date(2027, 6, 30),
        ("bob@example.org", ""): None,
        ("old@example.org", ""): date(2020, 1, 1),  # the withdrawal is read, not swallowed by the quote above it
    }
    assert [w.split(":")[0] for w in warnings] == ["line 2", "line 4", "line 5"]
    assert "quote is not closed" in warnings[0]


def test_an_oversized_field_skips_its_line_only():
    text = "ann@example.org,2026-01-01," + "x" * (200 * 1024) + "\nbob@example.org,,\n"
    entries, warnings = parse_approvals(text)
    assert entries == {("bob@example.org", ""): None}
    assert len(warnings) == 1 and warnings[0].startswith("line 1: cannot be read")


def test_parse_approvals_address_with_space_is_refused():
    entries, warnings = parse_approvals("jane doe@example.org,\n")
    assert entries == {} and warnings[0].startswith("line 1:")


def test_parse_approvals_last_duplicate_wins_with_a_warning():
    entries, warnings = parse_approvals("ann@example.org,2025-01-01\nANN@example.org,2026-01-01\n")
    assert entries == {("ann@example.org", ""): date(2026, 1, 1)}
    assert len(warnings) == 1 and warnings[0].startswith("line 2:") and "listed again" in warnings[0]


# -- ApprovalList ----------------------------------------------------------------------------
def ask(source, email):
    return asyncio.run(source.ask(email))


@pytest.fixture
def approvals(tmp_path):
    path = tmp_path / "approvals.csv"
    path.write_text("email,approved_until,note\njane@example.org,2025-06-30,\nopen@example.org,,\n")
    return path


@pytest.mark.parametrize(
    "today,email,outcome",
    [
        (date(2025, 6, 1), "jane@example.org", APPROVED),
        (date(2025, 6, 30), "JANE@example.org", APPROVED),  # through the last day
        (date(2025, 7, 1), "jane@example.org", EXPIRED),  # the day after
        (date(2099, 1, 1), "open@example.org", APPROVED),  # no end date
        (date(2025, 6, 1), "john@example.org", DENIED),
    ],
)
def test_approval_list(approvals, today, email, outcome):
    decision = ask(ApprovalList(approvals, today=lambda: today), email)
    assert (decision.outcome, decision.source) == (outcome, "list")


def test_expired_reason_names_the_end_date(approvals):
    decision = ask(ApprovalList(approvals, today=lambda: date(2025, 7, 1)), EMAIL)
    assert "2025-06-30" in decision.reason


def test_missing_list_is_unavailable(tmp_path):
    assert ask(ApprovalList(tmp_path / "approvals.csv"), EMAIL).outcome == UNAVAILABLE


def test_list_is_reread_when_the_file_changes(approvals):
    source = ApprovalList(approvals, today=lambda: date(2025, 6, 1))
    assert ask(source, "john@example.org").outcome == DENIED
    approvals.write_text("email,approved_until\njohn@example.org,2025-12-31\nbad-line\n")
    os.utime(approvals, ns=(approvals.stat().st_atime_ns, approvals.stat().st_mtime_ns + 10**9))
    assert ask(source, "john@example.org").outcome == APPROVED
    assert ask(source, "jane@example.org").outcome == DENIED
    assert len(source.warnings) == 1 and source.warnings[0].startswith("line 3:")


# -- combine, AuditLog, AccessChecker ---------------------------------------------------------------
def test_combine_without_decisions_is_a_denial():
    decision = combine([])
    assert (decision.outcome, decision.source) == (DENIED, "none")
    assert not decision.approved


class Fake:
    """A source answering from a list, one answer per ask (the last one repeats)."""

    def __init__(self, name, *outcomes):
        self.name, self.outcomes, self.asked = name, list(outcomes), []

    async def ask(self, email):
        self.asked.append(email)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return Decision(outcome, self.name, f"{self.name} says {outcome}")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def checker(*sources, cache=180, clock=None, audit=None):
    return AccessChecker(sources, cache, audit or AuditLog(None), clock=clock or Clock())


def decide(c, user=EMAIL):
    return asyncio.run(c.decide(user))


def test_first_approval_wins_and_stops_the_chain():
    first, second = Fake("registry", APPROVED), Fake("list", DENIED)
    decision = decide(checker(first, second))
    assert (decision.outcome, decision.source) == (APPROVED, "registry")
    assert first.asked == [EMAIL] and second.asked == []


def test_later_source_can_approve():
    decision = decide(checker(Fake("registry", DENIED), Fake("list", APPROVED)))
    assert (decision.outcome, decision.source) == (APPROVED, "list")


@pytest.mark.parametrize(
    "outcomes,expected",
    [
        ((DENIED, UNAVAILABLE), (UNAVAILABLE, "list")),
        ((UNAVAILABLE, DENIED), (UNAVAILABLE, "registry")),
        ((DENIED, EXPIRED), (EXPIRED, "list")),
        ((EXPIRED, DENIED), (EXPIRED, "registry")),
        ((DENIED, DENIED), (DENIED, "registry")),
    ],
)
def test_no_approval_combines(outcomes, expected):
    decision = decide(checker(Fake("registry", outcomes[0]), Fake("list", outcomes[1])))
    assert (decision.outcome, decision.source) == expected


def test_cache_carries_a_recent_approval_over_an_outage_only():
    clock = Clock()
    c = checker(Fake("registry", APPROVED, UNAVAILABLE), cache=180, clock=clock)
    assert decide(c).source == "registry"
    clock.now += 180
    decision = decide(c)
    assert (decision.outcome, decision.source) == (APPROVED, "cache")
    assert "registry" in decision.reason
    assert decide(c, "other@example.org").outcome == UNAVAILABLE  # the cache is per user
    clock.now += 1
    assert decide(c).outcome == UNAVAILABLE


def test_a_denial_clears_the_cache():
    c = checker(Fake("registry", APPROVED, DENIED, UNAVAILABLE))
    assert decide(c).approved
    assert decide(c).outcome == DENIED
    assert decide(c).outcome == UNAVAILABLE


def test_an_expiry_clears_the_cache():
    c = checker(Fake("list", APPROVED, EXPIRED, UNAVAILABLE))
    decide(c)
    assert decide(c).outcome == EXPIRED
    assert decide(c).outcome == UNAVAILABLE


def test_recently_approved():
    clock = Clock()
    c = checker(Fake("registry", APPROVED, DENIED), clock=clock)
    assert not c.recently_approved(EMAIL, 60)
    decide(c)
    clock.now += 60
    assert c.recently_approved(EMAIL, 60)
    assert not c.recently_approved(EMAIL, 59)
    decide(c)
    assert not c.recently_approved(EMAIL, 3600)


class FakeHttp:
    """Stands in for tornado's client: answers every fetch with one status and body."""

    def __init__(self, code, body):
        self.code, self.body, self.requests = code, body, []

    async def fetch(self, request, raise_error=True):
        self.requests.append(request)
        return SimpleNamespace(code=self.code, body=self.body)


def test_check_writes_one_audit_line_per_call_without_secrets(tmp_path):
    log = tmp_path / "audit" / "access.jsonl"
    source = registry("bearer", secret="tok-SECRET-42")
    source._http = FakeHttp(401, b'{"error": "bad token tok-SECRET-42"}')
    c = checker(source, Fake("list", DENIED), audit=AuditLog(log))
    asyncio.run(c.check(EMAIL, "login"))
    asyncio.run(c.check(EMAIL, "refresh"))
    assert source._http.requests[0].headers["Authorization"] == "Bearer tok-SECRET-42"
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert "tok-SECRET-42" not in log.read_text()
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("event", "user", "decision", "source")} == {
        "event": "login",
        "user": EMAIL,
        "decision": UNAVAILABLE,
        "source": "registry",
    }
    assert "credentials" in first["reason"]
    assert isinstance(first["latency_ms"], (int, float)) and first["latency_ms"] >= 0
    assert json.loads(lines[1])["event"] == "refresh"


def test_audit_log_without_a_path_only_returns_the_record():
    record = AuditLog(None).write("login", EMAIL, Decision(DENIED, "list", "not listed"), 0.0123)
    assert (record["decision"], record["latency_ms"]) == (DENIED, 12.3)


def test_an_outage_past_the_cache_and_the_grace_leaves_approval_unconfirmed():
    clock, source = Clock(), Fake("registry", APPROVED)
    answer = source.outcomes
    c = AccessChecker([source], 60, AuditLog(None), clock=clock, outage_grace=120)
    assert asyncio.run(c.decide(EMAIL)).outcome == APPROVED
    answer[0] = UNAVAILABLE
    clock.now += 60
    assert asyncio.run(c.decide(EMAIL)).source == "cache"
    clock.now += 120
    assert asyncio.run(c.decide(EMAIL)).outcome == UNAVAILABLE  # exactly cache + grace: still ridden out
    clock.now += 1
    late = asyncio.run(c.decide(EMAIL))
    assert late.outcome == UNCONFIRMED and "unconfirmed for 3 min" in late.reason
    answer[0] = APPROVED  # the registry is back: approved again, the clock starts anew
    assert asyncio.run(c.decide(EMAIL)).outcome == APPROVED
    answer[0] = UNAVAILABLE
    assert asyncio.run(c.decide(EMAIL)).source == "cache"


def test_without_a_known_approval_the_grace_counts_from_the_first_failure():
    clock = Clock()
    c = AccessChecker([Fake("list", UNAVAILABLE)], 60, AuditLog(None), clock=clock, outage_grace=0)
    assert asyncio.run(c.decide(EMAIL)).outcome == UNAVAILABLE
    clock.now += 61
    assert asyncio.run(c.decide(EMAIL)).outcome == UNCONFIRMED


def test_grace_off_rides_out_any_outage():
    clock = Clock()
    c = AccessChecker([Fake("list", UNAVAILABLE)], 60, AuditLog(None), clock=clock, outage_grace=None)
    asyncio.run(c.decide(EMAIL))
    clock.now += 365 * 86400
    assert asyncio.run(c.decide(EMAIL)).outcome == UNAVAILABLE


def test_the_last_decision_is_remembered_for_a_moment_only():
    clock = Clock()
    c = checker(Fake("registry", UNAVAILABLE), clock=clock)
    assert c.last_decision(EMAIL, 5) is None
    asyncio.run(c.check(EMAIL, "refresh"))
    assert c.last_decision(EMAIL, 5).outcome == UNAVAILABLE
    clock.now += 6
    assert c.last_decision(EMAIL, 5) is None


def test_a_definite_no_is_acted_on_even_when_the_audit_cannot_be_written(tmp_path, caplog):
    blocker = tmp_path / "audit"
    blocker.write_text("a file where the audit folder should be")  # every write fails, as on a full disk
    audit = AuditLog(blocker / "access.jsonl")
    c = checker(Fake("list", DENIED), audit=audit)
    acted = []

    async def revoke(decision):
        acted.append(decision.outcome)

    decision = asyncio.run(c.check(EMAIL, "recheck", act=revoke))
    assert decision.outcome == DENIED and acted == [DENIED]
    assert audit.failures == 1
    assert "the audit log could not be written" in caplog.text and EMAIL in caplog.text


def test_the_audit_line_follows_the_action():
    order = []

    class Recording(AuditLog):
        def write(self, *args):
            order.append("audit")
            return super().write(*args)

    async def act(decision):
        order.append("act")

    asyncio.run(checker(Fake("list", DENIED), audit=Recording(None)).check(EMAIL, "recheck", act=act))
    assert order == ["act", "audit"]


def test_rotation_loses_no_line_and_log_reads_across_files(tmp_path):
    path = tmp_path / "audit" / "access.jsonl"
    audit = AuditLog(path, max_bytes=2000, keep=100)
    for n in range(300):
        audit.write("login", f"user{n}@example.org", Decision(APPROVED, "list", "on the list"), 0)
    files = audit.files()
    assert len(files) > 10 and files[-1] == path and files[0].name.endswith(f".{len(files) - 1}")
    users = [json.loads(line)["user"] for f in files for line in f.read_text().splitlines()]
    assert users == [f"user{n}@example.org" for n in range(300)]  # every line, in order, once
    assert all(f.stat().st_size < 2000 + 300 for f in files)
    newest = [json.loads(line)["user"] for line in audit.tail(25)]
    assert newest == [f"user{n}@example.org" for n in range(275, 300)]  # across at least two files


def test_rotation_keeps_only_the_newest_files(tmp_path):
    path = tmp_path / "access.jsonl"
    audit = AuditLog(path, max_bytes=500, keep=3)
    for n in range(200):
        audit.write("login", f"user{n}@example.org", Decision(APPROVED, "list", "on the list"), 0)
    assert [f.name for f in audit.files()] == ["access.jsonl.3", "access.jsonl.2", "access.jsonl.1", "access.jsonl"]
    assert json.loads(audit.tail(1)[0])["user"] == "user199@example.org"


# -- identity ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "emails,expected",
    [
        (
            [
                {"email": "a@x.org", "primary": False, "verified": True},
                {"email": "Jane@Example.org", "primary": True, "verified": True},
            ],
            "jane@example.org",
        ),
        ([{"email": "jane@example.org", "primary": True, "verified": False}], None),
        ([{"email": "jane@example.org", "primary": False, "verified": True}], None),
        ([{"email": "", "primary": True, "verified": True}], None),
        (["jane@example.org"], None),
        ({"message": "Bad credentials"}, None),
        (None, None),
        ([], None),
    ],
)
def test_primary_verified_email(emails, expected):
    assert primary_verified_email(emails) == expected


def test_github_teams():
    state = {
        "teams": [
            {"organization": {"login": "icgc"}, "slug": "admins"},
            {"organization": {"login": "oicr"}, "slug": "dev"},
        ]
    }
    assert github_teams(state) == ["icgc:admins", "oicr:dev"]
    assert github_teams({}) == [] and github_teams({"teams": None}) == []


def test_approvals_per_dataset_have_their_own_end_dates(tmp_path):
    approvals = tmp_path / "approvals.csv"
    approvals.write_text(
        "email,approved_until,note,dataset\n"
        "ann@example.org,,hub\n"
        "ann@example.org,2025-06-30,DACO-1,pcawg\n"
        "ann@example.org,2020-01-01,EGA-2,cohort\n"
        "bob@example.org,,,Not A Name\n"
    )
    source = ApprovalList(approvals, today=lambda: date(2025, 6, 1))
    assert asyncio.run(source.ask("ann@example.org")).outcome == APPROVED
    assert (
        asyncio.run(source.ask("ann@example.org", "pcawg")).reason == "on the approval list for pcawg until 2025-06-30"
    )
    assert asyncio.run(source.ask("ann@example.org", "cohort")).outcome == EXPIRED
    assert asyncio.run(source.ask("ann@example.org", "other")).outcome == DENIED
    assert asyncio.run(source.ask("bob@example.org")).outcome == DENIED  # its only line was skipped
    assert source.warnings == ["line 5: 'Not A Name' is not a dataset name; line skipped"]


def test_a_dataset_grant_may_require_cloud_access_when_the_hub_does_not():
    reg = registry(cloud=False)
    body = json.dumps([{"entity-id": EMAIL, "details": {"cloud-access": False}}]).encode()
    assert reg.judge(EMAIL, 200, body).outcome == APPROVED
    assert reg.judge(EMAIL, 200, body, cloud_access=True).outcome == DENIED
