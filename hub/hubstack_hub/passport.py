"""GA4GH Passport visas as an approval source for one dataset.

The identity provider's userinfo carries `ga4gh_passport_v1`: a list of visas,
each a JWT in the Visa Document Token format (header `jku` + `kid`, payload
`iss`, `sub`, `iat`, `exp`, `ga4gh_visa_v1`). GA4GH Passport v1.2,
https://ga4gh-duri.github.io/researcher_ids/ga4gh_passport_v1.html (source:
ga4gh-duri.github.io, researcher_ids/ga4gh_passport_v1.md).

A visa grants access when: its `iss` is on the operator's trusted-issuer list
and its `jku` is exactly that issuer's key set (nothing else is ever fetched);
its signature verifies with a key from that set (RS*/ES*/PS256, never none or
HS*); it is not expired and neither issued nor asserted in the future (within
the clock skew); it is a ControlledAccessGrants visa whose `value` equals the
dataset identifier exactly (values are case-sensitive), asserted `by` an
accepted party. Visas with an audience (`aud`) or with `conditions` are refused
rather than half-understood, as fence (Gen3's NIH RAS client) does.
Access-token-format visas (no `jku`) are not supported. The visa's `sub` is
not compared with the hub user: the passport came from that user's own login.
"""

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import jwt

from .decision import APPROVED, DENIED, EXPIRED, UNAVAILABLE, Decision, combine

PASSPORT_CLAIM = "ga4gh_passport_v1"
GRANTS = "ControlledAccessGrants"
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
MAX_VISAS, MAX_VISA_CHARS = 100, 16384
REFETCH_INTERVAL = 30  # seconds between refetches of a key set for a kid it lacks
FETCH_FAILED = "the issuer's key set could not be fetched"


class Refused(Exception):
    """One visa refused; the message is the reason, in our own words."""


@dataclass
class _Ask:
    now: float
    approvals: list = field(default_factory=list)  # (exp, reason)
    expired: list = field(default_factory=list)  # exp of expired visas for the dataset
    unavailable: list = field(default_factory=list)  # iss whose key set could not be fetched
    failed: set = field(default_factory=set)  # jku that failed in this ask: not fetched again


class PassportSource:
    name = "passport"

    def __init__(
        self,
        trusted_issuers,
        allowed_by=frozenset({"dac"}),
        clock_skew=60,
        timeout=5.0,
        jwks_ttl=300,
        clock=time.time,
        fetch_jwks=None,
    ):
        self.trusted_issuers, self.allowed_by = dict(trusted_issuers), frozenset(allowed_by)
        self.clock_skew, self.timeout, self.jwks_ttl, self.clock = clock_skew, timeout, jwks_ttl, clock
        self.fetch_jwks = fetch_jwks or self.http_get_json
        self._keysets = {}  # jku: (fetched at, {kid: PyJWK})
        self._http = None

    async def http_get_json(self, url):
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True)
        request = HTTPRequest(
            url,
            headers={"Accept": "application/json"},
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            follow_redirects=False,
        )
        response = await self._http.fetch(request)  # raises on anything but 2xx
        if response.code != 200:
            raise ValueError(f"HTTP {response.code}")
        return json.loads(response.body)

    async def ask(self, user, value, visas):
        """(Decision, [one line per refused visa]) for the dataset `value`."""
        if not isinstance(visas, list):
            malformed = [] if visas is None else ["the passport claim is not a list of visas"]
            return Decision(DENIED, self.name, "the identity provider sent no passport"), malformed
        state, rejections = _Ask(self.clock()), []
        for number, token in enumerate(visas[:MAX_VISAS], start=1):
            where = f"visa {number}"
            try:
                header, claims = read(token)
                if isinstance(claims.get("iss"), str):
                    where += f" (iss {printable(claims['iss'])})"
                await self.check(value, token, header, claims, state)
            except Refused as refusal:
                rejections.append(f"{where}: {refusal}")
        if len(visas) > MAX_VISAS:
            rejections.append(f"visas after the first {MAX_VISAS} were not looked at ({len(visas) - MAX_VISAS} more)")
        if state.approvals:
            return Decision(APPROVED, self.name, max(state.approvals)[1]), rejections
        negatives = [Decision(DENIED, self.name, f"no valid visa for {value}")]
        if state.expired:
            negatives.append(Decision(EXPIRED, self.name, f"the visa for {value} expired at {iso(max(state.expired))}"))
        if state.unavailable:
            reason = f"the key set of visa issuer {state.unavailable[0]} could not be fetched"
            negatives.append(Decision(UNAVAILABLE, self.name, reason))
        return combine(negatives), rejections

    async def check(self, value, token, header, claims, state):
        """Record the visa's approval (or expiry) in `state`; raise Refused if it is refused."""
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss not in self.trusted_issuers:
            raise Refused("issuer not trusted")
        if "jku" not in header:
            raise Refused("only visa document tokens with jku are supported")
        jku = header["jku"]
        if jku != self.trusted_issuers[iss]:
            raise Refused("jku is not the trusted key set of its issuer")
        if header.get("alg") not in ALGORITHMS:
            raise Refused(
                f"algorithm {printable(str(header.get('alg')))!r} is not accepted (only {', '.join(ALGORITHMS)})"
            )
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Refused("the header names no key (kid)")
        key = (await self.keys(iss, jku, kid, state)).get(kid)
        if key is None:
            raise Refused("signed by a key not in the issuer's key set")
        options = {"require": ["iss", "sub", "iat", "exp"], "verify_aud": False}
        # Times are checked below against our clock, which tests can move; PyJWT would use its own.
        options.update(verify_exp=False, verify_iat=False, verify_nbf=False)
        try:
            claims = jwt.decode(token, key, algorithms=[key.algorithm_name], leeway=self.clock_skew, options=options)
        except jwt.InvalidSignatureError:
            raise Refused("signature does not verify with the issuer's keys") from None
        except jwt.InvalidAlgorithmError:
            raise Refused(f"algorithm does not match the issuer's key ({key.algorithm_name})") from None
        except jwt.MissingRequiredClaimError as err:
            raise Refused(f"lacks the required claim {err.claim!r}") from None
        except jwt.PyJWTError:
            raise Refused("malformed claims") from None
        self.judge(value, claims, state)

    def judge(self, value, claims, state):
        now, skew = state.now, self.clock_skew
        if "aud" in claims:
            raise Refused("visas with an audience (aud) are not supported")
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", 0)
        if not all(is_time(t) for t in (exp, iat, nbf)):
            raise Refused("malformed (exp, iat or nbf is not a time)")
        visa = claims.get("ga4gh_visa_v1")
        if not isinstance(visa, dict) or not all(isinstance(visa.get(f), str) for f in ("type", "value")):
            raise Refused("malformed (ga4gh_visa_v1 is not a visa object)")
        mine = visa["type"] == GRANTS and visa["value"] == value
        if exp + skew < now:
            if mine:
                state.expired.append(exp)
            raise Refused(f"expired at {iso(exp)}")
        if iat > now + skew:
            raise Refused("issued in the future")
        if nbf > now + skew:
            raise Refused(f"not valid before {iso(nbf)}")
        asserted = visa.get("asserted")
        if not isinstance(asserted, int) or isinstance(asserted, bool):
            raise Refused("malformed (asserted is not a time)")
        if asserted > now + skew:
            raise Refused("asserted in the future")
        if visa["type"] != GRANTS:
            return  # another kind of visa: not a grant, not a refusal
        if visa["value"] != value:
            if visa["value"].casefold() == value.casefold():
                raise Refused(f"value differs from {value} only in case (values are case-sensitive)")
            return  # a grant for another dataset
        by = visa.get("by")
        if not isinstance(by, str) or by not in self.allowed_by:
            accepted = ", ".join(sorted(self.allowed_by)) or "nothing"
            raise Refused(f"asserted by {printable(str(by))!r}, only {accepted} accepted")
        if visa.get("conditions"):
            raise Refused("visas with conditions are not supported")
        reason = f"a {GRANTS} visa from {claims['iss']} by {by}, valid until {iso(exp)}"
        state.approvals.append((exp, reason))

    async def keys(self, iss, jku, kid, state):
        """{kid: key} of a trusted key set: cached for jwks_ttl, refetched (rarely) for a kid it lacks."""
        cached = self._keysets.get(jku)
        stale = cached is None or state.now - cached[0] >= self.jwks_ttl
        if stale or (kid not in cached[1] and state.now - cached[0] >= REFETCH_INTERVAL):
            try:
                if jku in state.failed:
                    raise ValueError("failed earlier in this ask")
                cached = self._keysets[jku] = (state.now, parse_jwks(await self.fetch_jwks(jku)))
            except Exception:  # any failure to fetch or parse: an outage, not a decision about the user
                state.failed.add(jku)
                if iss not in state.unavailable:
                    state.unavailable.append(iss)
                raise Refused(FETCH_FAILED) from None
        return cached[1]


def read(token):
    """(header, claims) read without verification, only to find iss, jku and kid."""
    if not isinstance(token, str):
        raise Refused("malformed (not a string)")
    if len(token) > MAX_VISA_CHARS:
        raise Refused(f"too long (over {MAX_VISA_CHARS} characters)")
    if token.count(".") != 2:
        raise Refused("malformed (not a signed JWT)")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Refused("malformed (not a signed JWT)") from None
    return header, claims


def parse_jwks(jwks):
    if not isinstance(jwks, dict):
        raise ValueError("not a JWKS")
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id and k.algorithm_name in ALGORITHMS}
    if not keys:
        raise ValueError("no usable signing keys")
    return keys


def is_time(t):
    return isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)


def iso(t):
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    except (OverflowError, OSError, ValueError):
        return str(t)


def printable(text, limit=100):
    """Someone else's string, made safe for one log line."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
