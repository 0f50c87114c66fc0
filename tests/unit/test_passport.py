import asyncio
import base64

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from hubstack_hub.decision import APPROVED, DENIED, EXPIRED, UNAVAILABLE
from hubstack_hub.passport import PASSPORT_CLAIM, PassportSource

NOW = 1780315200  # 2026-06-01T12:00Z
DATASET = "phs000001.v1.p1.c1"
ISS, JKU = "https://visas.example.org/", "https://visas.example.org/jwks"
ISS2, JKU2 = "https://broker.example.net/", "https://broker.example.net/.well-known/jwks.json"
SUB = "researcher-7f3a@visas.example.org"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FORGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private_key, kid, alg):
    algorithm = ECAlgorithm if isinstance(private_key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


def key_sets():
    return {JKU: {"keys": [jwk(KEY, "k1", "RS256")]}, JKU2: {"keys": [jwk(EC_KEY, "e1", "ES256")]}}


class Fetcher:
    """The fake fetch_jwks: answers from `sets` (an exception is raised), records every URL asked."""

    def __init__(self, sets):
        self.sets, self.urls = sets, []

    async def __call__(self, url):
        self.urls.append(url)
        answer = self.sets[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def make(**options):
    fetcher, clock = Fetcher(key_sets()), Clock()
    source = PassportSource({ISS: JKU, ISS2: JKU2}, clock=clock, fetch_jwks=fetcher, **options)
    return source, fetcher, clock


def ask(source, visas, value=DATASET):
    return asyncio.run(source.ask("jane", value, visas))


def visa(
    key=KEY,
    *,
    iss=ISS,
    jku=JKU,
    kid="k1",
    alg="RS256",
    value=DATASET,
    by="dac",
    kind="ControlledAccessGrants",
    exp=NOW + 3600,
    iat=NOW - 60,
    asserted=NOW - 86400,
    header=None,
    drop=(),
    extra_visa=None,
    **extra_claims,
):
    visa_object = {"type": kind, "asserted": asserted, "value": value, "source": "https://dac.example.org/", "by": by}
    claims = {"iss": iss, "sub": SUB, "iat": iat, "exp": exp, "ga4gh_visa_v1": {**visa_object, **(extra_visa or {})}}
    claims.update(extra_claims)
    for name in drop:
        claims.pop(name)
    headers = {"jku": jku, "kid": kid} if header is None else header
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_claim_name():
    assert PASSPORT_CLAIM == "ga4gh_passport_v1"


# -- approval ----------------------------------------------------------------------------
def test_valid_visa_is_approved():
    source, fetcher, _ = make()
    decision, rejections = ask(source, [visa()])
    assert decision.outcome == APPROVED and decision.source == "passport"
    assert decision.reason == f"a ControlledAccessGrants visa from {ISS} by dac, valid until 2026-06-01T13:00Z"
    assert rejections == [] and fetcher.urls == [JKU]


def test_ec_signed_visa_from_another_trusted_issuer_is_approved():
    source, fetcher, _ = make()
    decision, rejections = ask(source, [visa(EC_KEY, iss=ISS2, jku=JKU2, kid="e1", alg="ES256")])
    assert decision.outcome == APPROVED and ISS2 in decision.reason
    assert rejections == [] and fetcher.urls == [JKU2]


def test_visas_of_other_types_and_datasets_are_not_grants_nor_refusals():
    source, _, _ = make()
    others = [visa(value="phs000002.v1.p1.c1"), visa(kind="AffiliationAndRole", value="faculty@example.org")]
    decision, rejections = ask(source, others)
    assert (decision.outcome, decision.reason) == (DENIED, f"no valid visa for {DATASET}")
    assert rejections == []


# -- signature and keys ------------------------------------------------------------------
def test_same_kid_signed_by_another_key_is_refused():
    source, _, _ = make()
    decision, rejections = ask(source, [visa(FORGER_KEY)])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): signature does not verify with the issuer's keys"]


def test_altered_payload_is_refused():
    header, _, signature = visa(value="phs000002.v1.p1.c1").split(".")
    _, payload, _ = visa().split(".")  # a grant for DATASET, under the other visa's signature
    decision, rejections = ask(make()[0], [f"{header}.{payload}.{signature}"])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): signature does not verify with the issuer's keys"]


def test_unknown_kid_is_refused():
    source, _, _ = make()
    decision, rejections = ask(source, [visa(FORGER_KEY, kid="k9")])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): signed by a key not in the issuer's key set"]


def test_missing_kid_is_refused():
    decision, rejections = ask(make()[0], [visa(header={"jku": JKU})])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): the header names no key (kid)"]


@pytest.mark.parametrize("alg,key", [("none", None), ("HS256", "a shared secret of thirty-two bytes or more")])
def test_alg_none_and_hmac_are_refused_without_fetching(alg, key):
    source, fetcher, _ = make()
    decision, rejections = ask(source, [visa(key, alg=alg)])
    assert decision.outcome == DENIED
    assert rejections == [
        f"visa 1 (iss {ISS}): algorithm '{alg}' is not accepted (only RS256, RS384, RS512, ES256, ES384, PS256)"
    ]
    assert fetcher.urls == []


def test_algorithm_other_than_the_keys_is_refused():
    decision, rejections = ask(make()[0], [visa(alg="PS256")])  # right key, but its JWK says RS256
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): algorithm does not match the issuer's key (RS256)"]


# -- issuers and key-set URLs ------------------------------------------------------------
@pytest.mark.parametrize("jku", ["https://evil.example/jwks", JKU2, JKU + "/", None])
def test_jku_other_than_the_issuers_is_refused_and_never_fetched(jku):
    source, fetcher, _ = make()
    token = visa(header={"jku": jku, "kid": "k1"}) if jku else visa(header={"kid": "k1"}, scope="openid")
    decision, rejections = ask(source, [token])
    assert decision.outcome == DENIED
    reason = (
        "jku is not the trusted key set of its issuer" if jku else "only visa document tokens with jku are supported"
    )
    assert rejections == [f"visa 1 (iss {ISS}): {reason}"]
    assert fetcher.urls == []


@pytest.mark.parametrize("iss", ["https://evil.example/", ISS.rstrip("/"), ISS.upper()])
def test_untrusted_issuer_is_refused_and_never_fetched(iss):
    source, fetcher, _ = make()
    decision, rejections = ask(source, [visa(iss=iss, jku="https://evil.example/jwks")])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {iss}): issuer not trusted"]
    assert fetcher.urls == []


# -- time --------------------------------------------------------------------------------
def test_expired_visa_is_expired():
    decision, rejections = ask(make()[0], [visa(exp=NOW - 3600)])
    assert (decision.outcome, decision.reason) == (EXPIRED, f"the visa for {DATASET} expired at 2026-06-01T11:00Z")
    assert rejections == [f"visa 1 (iss {ISS}): expired at 2026-06-01T11:00Z"]


def test_expired_within_the_clock_skew_is_still_approved():
    assert ask(make()[0], [visa(exp=NOW - 30)])[0].outcome == APPROVED
    decision, rejections = ask(make(clock_skew=10)[0], [visa(exp=NOW - 30)])
    assert decision.outcome == EXPIRED
    assert rejections == [f"visa 1 (iss {ISS}): expired at 2026-06-01T11:59Z"]


def test_the_injected_clock_decides_expiry():
    source, _, clock = make()
    assert ask(source, [visa()])[0].outcome == APPROVED
    clock.now = NOW + 3600 + 61
    assert ask(source, [visa()])[0].outcome == EXPIRED


def test_expired_visa_for_another_dataset_is_refused_but_not_an_expiry():
    decision, rejections = ask(make()[0], [visa(value="phs000002.v1.p1.c1", exp=NOW - 3600)])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): expired at 2026-06-01T11:00Z"]


def test_issued_in_the_future_is_refused():
    decision, rejections = ask(make()[0], [visa(iat=NOW + 600)])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): issued in the future"]
    assert ask(make()[0], [visa(iat=NOW + 30)])[0].outcome == APPROVED  # within the skew


@pytest.mark.parametrize(
    "asserted,reason", [(NOW + 600, "asserted in the future"), ("2026-05-01", "malformed (asserted is not a time)")]
)
def test_asserted_must_be_a_past_time(asserted, reason):
    decision, rejections = ask(make()[0], [visa(asserted=asserted)])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): {reason}"]


def test_missing_exp_is_refused():
    decision, rejections = ask(make()[0], [visa(drop=("exp",))])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): lacks the required claim 'exp'"]


# -- the visa object ---------------------------------------------------------------------
def test_asserted_by_self_is_refused_unless_allowed():
    decision, rejections = ask(make()[0], [visa(by="self")])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): asserted by 'self', only dac accepted"]
    decision, rejections = ask(make(allowed_by={"dac", "self"})[0], [visa(by="self")])
    assert decision.outcome == APPROVED and "by self" in decision.reason and rejections == []


def test_value_differing_only_in_case_is_refused():
    decision, rejections = ask(make()[0], [visa(value=DATASET.upper())])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): value differs from {DATASET} only in case (values are case-sensitive)"]


def test_conditions_are_refused():
    conditions = [[{"type": "AffiliationAndRole", "value": "const:faculty@example.org", "by": "so"}]]
    decision, rejections = ask(make()[0], [visa(extra_visa={"conditions": conditions})])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): visas with conditions are not supported"]
    assert ask(make()[0], [visa(extra_visa={"conditions": []})])[0].outcome == APPROVED


def test_audience_is_refused():
    decision, rejections = ask(make()[0], [visa(aud="https://hub.example.org")])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): visas with an audience (aud) are not supported"]


# -- malformed claims and visas ----------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "two.parts",
        "four.parts.in.it",
        visa().replace(".eyJ", ".eyJ.", 1),  # the payload cut in two: base64 decoders would skip the dot
        "!!!.@@@.###",
        ".".join(map(b64, [b"[1, 2]", b"{}", b"sig"])),  # header not an object
        ".".join(map(b64, [b"{not json", b"{}", b"sig"])),
        ".".join(map(b64, [b'{"alg": "RS256"}', b"[]", b"sig"])),  # payload not an object
    ],
)
def test_malformed_visa_is_refused(token):
    decision, rejections = ask(make()[0], [token])
    assert decision.outcome == DENIED
    assert rejections == ["visa 1: malformed (not a signed JWT)"]


def test_non_strings_in_the_list_are_refused_and_the_rest_still_counts():
    decision, rejections = ask(make()[0], [42, None, {"visa": "x"}, visa()])
    assert decision.outcome == APPROVED
    assert rejections == [f"visa {n}: malformed (not a string)" for n in (1, 2, 3)]


@pytest.mark.parametrize("claim", [visa(), {"visas": [visa()]}, 42])
def test_a_claim_that_is_not_a_list_is_no_passport(claim):
    decision, rejections = ask(make()[0], claim)
    assert (decision.outcome, decision.reason) == (DENIED, "the identity provider sent no passport")
    assert rejections == ["the passport claim is not a list of visas"]


def test_no_claim_is_no_passport():
    decision, rejections = ask(make()[0], None)
    assert (decision.outcome, decision.reason) == (DENIED, "the identity provider sent no passport")
    assert rejections == []
    decision, rejections = ask(make()[0], [])
    assert (decision.outcome, decision.reason, rejections) == (DENIED, f"no valid visa for {DATASET}", [])


def test_visa_with_a_malformed_visa_object_is_refused():
    token = visa(drop=("ga4gh_visa_v1",), ga4gh_visa_v1=["ControlledAccessGrants", DATASET])
    decision, rejections = ask(make()[0], [token])
    assert decision.outcome == DENIED
    assert rejections == [f"visa 1 (iss {ISS}): malformed (ga4gh_visa_v1 is not a visa object)"]


def test_only_the_first_100_visas_are_looked_at():
    source, fetcher, _ = make()
    decision, rejections = ask(source, ["garbage"] * 100 + [visa()])
    assert decision.outcome == DENIED
    assert len(rejections) == 101 and fetcher.urls == []
    assert rejections[-1] == "visas after the first 100 were not looked at (1 more)"


def test_oversize_visa_is_refused_unread():
    source, fetcher, _ = make()
    decision, rejections = ask(source, [visa(padding="x" * 17000)])
    assert decision.outcome == DENIED
    assert rejections == ["visa 1: too long (over 16384 characters)"] and fetcher.urls == []
    assert ask(source, [visa(padding="x" * 11000)])[0].outcome == APPROVED


def test_rejections_carry_no_token_signature_or_subject():
    tokens = [visa(FORGER_KEY), visa(exp=NOW - 3600), visa(by="self"), visa(aud="x"), "garbage." + visa()]
    _, rejections = ask(make()[0], tokens)
    assert len(rejections) == len(tokens)
    for token in tokens:
        for part in token.split("."):
            assert not any(part in line for line in rejections)
    assert not any(SUB in line or "eyJ" in line for line in rejections)


# -- fetching the key sets ---------------------------------------------------------------
def test_key_set_fetch_failure_is_unavailable():
    source, fetcher, _ = make()
    fetcher.sets[JKU] = OSError("connection refused")
    decision, rejections = ask(source, [visa(), visa()])
    assert decision.outcome == UNAVAILABLE and ISS in decision.reason
    assert rejections == [f"visa {n} (iss {ISS}): the issuer's key set could not be fetched" for n in (1, 2)]
    assert fetcher.urls == [JKU]  # once per ask
    fetcher.sets[JKU] = key_sets()[JKU]
    assert ask(source, [visa()])[0].outcome == APPROVED  # a failure is not cached


@pytest.mark.parametrize(
    "answer",
    [
        {"keys": []},
        {"nope": 1},
        ["keys"],
        "text",
        {"keys": "k1"},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]},
    ],
)
def test_an_answer_that_is_not_a_jwks_is_unavailable(answer):
    source, fetcher, _ = make()
    fetcher.sets[JKU] = answer
    decision, rejections = ask(source, [visa()])
    assert decision.outcome == UNAVAILABLE
    assert rejections == [f"visa 1 (iss {ISS}): the issuer's key set could not be fetched"]


def test_another_issuers_visa_still_approves_during_an_outage():
    source, fetcher, _ = make()
    fetcher.sets[JKU] = OSError("connection refused")
    decision, rejections = ask(source, [visa(), visa(EC_KEY, iss=ISS2, jku=JKU2, kid="e1", alg="ES256")])
    assert decision.outcome == APPROVED and ISS2 in decision.reason
    assert rejections == [f"visa 1 (iss {ISS}): the issuer's key set could not be fetched"]


def test_an_outage_outranks_an_expiry():
    # The visa that cannot be checked may be the one that is still valid.
    source, fetcher, _ = make()
    fetcher.sets[JKU] = OSError("connection refused")
    expired = visa(EC_KEY, iss=ISS2, jku=JKU2, kid="e1", alg="ES256", exp=NOW - 3600)
    assert ask(source, [visa(), expired])[0].outcome == UNAVAILABLE


def test_key_set_is_cached_until_its_ttl():
    source, fetcher, clock = make()
    assert ask(source, [visa()])[0].outcome == APPROVED
    clock.now = NOW + 299
    assert ask(source, [visa()])[0].outcome == APPROVED
    assert fetcher.urls == [JKU]
    clock.now = NOW + 300
    assert ask(source, [visa()])[0].outcome == APPROVED
    assert fetcher.urls == [JKU, JKU]


def test_unknown_kid_refetch_is_rate_limited():
    source, fetcher, clock = make()
    assert ask(source, [visa()])[0].outcome == APPROVED
    rotated = visa(NEW_KEY, kid="k2")
    fetcher.sets[JKU] = {"keys": [jwk(KEY, "k1", "RS256"), jwk(NEW_KEY, "k2", "RS256")]}
    clock.now = NOW + 10  # the set was fetched 10 s ago: not again yet
    decision, rejections = ask(source, [rotated])
    assert decision.outcome == DENIED and len(fetcher.urls) == 1
    assert rejections == [f"visa 1 (iss {ISS}): signed by a key not in the issuer's key set"]
    clock.now = NOW + 30
    assert ask(source, [rotated])[0].outcome == APPROVED and len(fetcher.urls) == 2
    clock.now = NOW + 45
    assert ask(source, [visa(NEW_KEY, kid="k3")] * 3)[0].outcome == DENIED and len(fetcher.urls) == 2
    clock.now = NOW + 61
    assert ask(source, [visa(NEW_KEY, kid="k3")] * 3)[0].outcome == DENIED and len(fetcher.urls) == 3


def test_default_fetch_reads_json_over_http_and_follows_no_redirect():
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port
    from tornado.web import Application, RequestHandler

    class Jwks(RequestHandler):
        def get(self):
            self.write(key_sets()[JKU])

    class Moved(RequestHandler):
        def get(self):
            self.redirect("/jwks")

    class Page(RequestHandler):
        def get(self):
            self.write("<html>maintenance</html>")

    async def main():
        sock, port = bind_unused_port()
        server = HTTPServer(Application([("/jwks", Jwks), ("/moved", Moved), ("/page", Page)]))
        server.add_sockets([sock])
        base = f"http://127.0.0.1:{port}"
        try:
            source = PassportSource({ISS: f"{base}/jwks", ISS2: f"{base}/moved"}, clock=Clock(), timeout=2)
            approved = await source.ask("jane", DATASET, [visa(jku=f"{base}/jwks")])
            moved = await source.ask("jane", DATASET, [visa(iss=ISS2, jku=f"{base}/moved")])
            with pytest.raises(ValueError):
                await source.http_get_json(f"{base}/page")
            return approved, moved
        finally:
            server.stop()

    approved, moved = asyncio.run(main())
    assert approved == (approved[0], []) and approved[0].outcome == APPROVED
    assert moved[0].outcome == UNAVAILABLE
    assert moved[1] == [f"visa 1 (iss {ISS2}): the issuer's key set could not be fetched"]
