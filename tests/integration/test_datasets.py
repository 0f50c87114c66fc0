"""Controlled datasets end to end: each researcher's server mounts exactly what they are approved for.

Three datasets: `pcawg` (a host folder, granted by a line of approvals.csv with
the dataset column), `cohort` (a Docker volume, granted by a GA4GH visa) and
`reference` (a host folder, open). The visas are signed here with keys made
here; the issuer's key set is served on the stack's network by the test
registry container, and the visas reach the hub through the OIDC provider's
user-info (oidc-provider-mock keeps any claim per user). Researchers log in
through the provider's form and look at /data from a kernel, as they would.
"""

import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from test_access import (  # the production set-up of the access tests: one provider, one registry
    HUB,
    OIDC,
    REGISTRY,
    Registry,
    audit,
    containers_of,
    fresh_hub_data,
    production_env,
    production_folders,
    services,  # noqa: F401 - the fixture
)

from helpers import NAME, run_hubstack, wait_for
from hubclient import OIDCUser
from hubstack.common.contract import ACCESS_MOUNT, SECRETS_MOUNT

ISSUER = "https://visas.hubstack.test/"
TRUSTED_JKU = "http://registry:8080/jwks/trusted"  # the hub's way to the key set, on the stack's network
ROGUE_JKU = "http://registry:8080/jwks/rogue"
COHORT = "urn:hubstack:ci:cohort-2024"
ANN, BEN, CAL, DORA = "ann@example.org", "ben@example.org", "cal@example.org", "dora@example.org"
RECHECK = 6
ALL = ("pcawg", "cohort", "reference", "daco")


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key, kid):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}


def visa(key, value=COHORT, kid="ci-1", jku=TRUSTED_JKU, lifetime=3600, **changes):
    now = int(time.time())
    body = {"type": "ControlledAccessGrants", "asserted": now - 60, "value": value, "source": "https://dac.test/"}
    body.update(changes.pop("visa", {}))
    payload = {"iss": ISSUER, "sub": "ci-subject", "iat": now - 60, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    payload.update(changes)
    payload["ga4gh_visa_v1"] = {**body, "by": body.get("by", "dac")}
    return jwt.encode(payload, key, algorithm="RS256", headers={"jku": jku, "kid": kid, "typ": "JWT"})


def set_claims(email, passport=None):
    claims = {"email": email, "email_verified": True}
    if passport is not None:
        claims["ga4gh_passport_v1"] = passport
    requests.put(f"{OIDC}/users/{requests.utils.quote(email, safe='')}", json=claims, timeout=10).raise_for_status()


def approvals(*lines):
    return "email,approved_until,note,dataset\n" + "".join(f"{line}\n" for line in lines)


HUB_LINES = [f"{who},,hub" for who in (ANN, BEN, CAL, DORA)]


@pytest.fixture(scope="module")
def keys():
    return {"trusted": new_key(), "rogue": new_key()}


@pytest.fixture(scope="module")
def stack(services, tmp_path_factory, docker_client, settings, keys):  # noqa: F811
    folder = tmp_path_factory.mktemp("datasets")
    pcawg, reference = folder / "pcawg", folder / "reference"
    for path, name, text in ((pcawg, "calls.tsv", "donor\tgene\nDO1\tTP53\n"), (reference, "GRCh38.txt", "chr1\n")):
        path.mkdir()
        path.chmod(0o755)
        (path / name).write_text(text)
    cohort, daco = f"{NAME}-ci-cohort", f"{NAME}-ci-daco"
    for volume, name in ((cohort, "cohort.vcf"), (daco, "donors.tsv")):
        docker_client.volumes.create(volume)
        docker_client.containers.run(
            settings.names.image("notebook"),
            ["sh", "-c", f"echo sample > /v/{name} && chmod 644 /v/{name}"],
            user="0",
            volumes={volume: {"bind": "/v"}},
            remove=True,
        )
    secrets_dir, access_dir = production_folders(
        folder, approvals(*HUB_LINES, f"{ANN},,DACO-1,pcawg", f"{BEN},,DACO-2,pcawg")
    )
    (access_dir / "datasets.toml").write_text(
        f"""
[passports]
issuers = [{{ iss = "{ISSUER}", jku = "{TRUSTED_JKU}" }}]

[datasets.pcawg]
title = "PCAWG somatic calls"
description = "ICGC controlled data (DACO)"
folder = "{pcawg}"
grant = "list"

[datasets.cohort]
title = "A cohort study"
volume = "{cohort}"
grant = "passport"
key = "{COHORT}"

[datasets.reference]
title = "Reference genome"
folder = "{reference}"
grant = "open"

[datasets.daco]
title = "ICGC controlled tier"
volume = "{daco}"
grant = "registry"
cloud_access = true
"""
    )
    registry = Registry()
    registry.approve(ANN, cloud_access=True)
    registry.approve(BEN, cloud_access=False)  # approved, but not for cloud access: not this dataset
    registry_put = lambda path, body: requests.put(f"{REGISTRY}/_test/{path}", json=body, timeout=10)  # noqa: E731
    registry_put("jwks/trusted", jwks(keys["trusted"], "ci-1")).raise_for_status()
    registry_put("jwks/rogue", jwks(keys["rogue"], "ci-1")).raise_for_status()
    env = production_env(secrets_dir, access_dir, HUBSTACK_ACCESS_RECHECK=str(RECHECK))
    fresh_hub_data(docker_client, settings)
    run_hubstack("up", env=env, timeout=600)
    yield {"env": env, "access_dir": access_dir, "folders": {"pcawg": pcawg, "reference": reference}, "cohort": cohort}
    fresh_hub_data(docker_client, settings)
    run_hubstack("up", timeout=600)  # back to the dev-mode hub the other modules use
    for volume in (cohort, daco):
        docker_client.volumes.get(volume).remove(force=True)
    for volume in docker_client.volumes.list(filters=settings.names.label_filter("dataset")):
        volume.remove(force=True)
    assert (pcawg / "calls.tsv").read_text().startswith("donor")  # removing the bind volume left the data


def researcher(email, passport=None):
    set_claims(email, passport)
    person = OIDCUser(HUB, email)
    person.login()
    return person


LOOK = """
import errno, json, os
seen = {"ls": sorted(os.listdir("/data")), "files": {}, "writes": {}}
for name in seen["ls"]:
    path = os.path.join("/data", name)
    if os.path.isdir(path):
        seen["files"][name] = sorted(os.listdir(path))
        try:
            open(os.path.join(path, "mine.txt"), "w").close()
            seen["writes"][name] = "written"
        except OSError as err:
            seen["writes"][name] = errno.errorcode[err.errno]
seen["readme"] = open("/data/README").read()
print(json.dumps(seen))
"""


def look_at_data(person):
    kernel = person.start_kernel()
    out, error = person.run(kernel["id"], LOOK)
    assert error is None, error
    return json.loads(out)


def home_rows(person):
    page = person.session.get(person.url("/hub/home"), timeout=30).text
    return {
        name: state
        for name in ALL
        for state in ("granted", "refused", "unknown")
        if f'data-dataset="{name}" data-state="{state}"' in page
    }


@pytest.mark.parametrize(
    "email,passport,expected",
    [
        (ANN, None, {"pcawg", "reference", "daco"}),
        (BEN, "valid", {"pcawg", "cohort", "reference"}),
        (CAL, None, {"reference"}),
    ],
)
def test_each_server_mounts_exactly_what_its_researcher_is_approved_for(
    stack, keys, docker_client, email, passport, expected
):
    person = researcher(email, [visa(keys["trusted"])] if passport else None)
    # Before any start the home page already says what they will get (decided at log-in).
    assert home_rows(person) == {n: "granted" if n in expected else "refused" for n in ALL}
    person.start_server()
    seen = look_at_data(person)
    assert set(seen["ls"]) == expected | {"README"}
    assert ("cohort" in seen["ls"]) == ("cohort" in expected)  # another's dataset is not even a name here
    contents = {"pcawg": ["calls.tsv"], "cohort": ["cohort.vcf"], "reference": ["GRCh38.txt"], "daco": ["donors.tsv"]}
    assert seen["files"] == {name: contents[name] for name in expected}
    assert seen["writes"] == {name: "EROFS" for name in expected}
    for name in ALL:
        said = "mounted read-only at /data/" + name if name in expected else f"{name} ("
        assert said in seen["readme"], seen["readme"]
    (container,) = containers_of(docker_client, email)
    assert set(filter(None, container.labels["hubstack.datasets"].split(","))) == expected
    stack.setdefault("people", {})[email] = person


def test_the_spawn_audit_line_names_what_was_mounted_and_what_not_and_who_decided(stack, docker_client, settings):
    lines = [a for a in audit(docker_client, settings) if a["event"] == "spawn-datasets"]
    by_user = {a["user"]: a for a in lines}
    ann = by_user[ANN]
    assert {m["dataset"]: m["source"] for m in ann["mounted"]} == {
        "pcawg": "list",
        "reference": "open",
        "daco": "registry",
    }
    assert [(r["dataset"], r["decision"], r["source"]) for r in ann["refused"]] == [("cohort", "denied", "passport")]
    ben = by_user[BEN]
    assert {m["dataset"]: m["source"] for m in ben["mounted"]}["cohort"] == "passport"
    (refused,) = ben["refused"]
    assert refused["dataset"] == "daco" and refused["reason"] == "approved in the registry, but not for cloud access"
    latencies = [a["latency_ms"] for a in lines]
    print(
        f"\ndataset decisions at spawn (4 datasets, one asked of the registry): {', '.join(f'{x:.1f}' for x in latencies)} ms"
    )


BAD_VISAS = {
    "signed by a key the issuer does not list": lambda k: visa(k["rogue"]),
    "expired": lambda k: visa(k["trusted"], lifetime=-3600),
    "jku not trusted": lambda k: visa(k["rogue"], jku=ROGUE_JKU),
    "by self": lambda k: visa(k["trusted"], visa={"by": "self"}),
    "value differs in case": lambda k: visa(k["trusted"], value=COHORT.upper()),
    "conditions": lambda k: visa(k["trusted"], visa={"conditions": [[{"type": "AffiliationAndRole"}]]}),
    "malformed": lambda k: "not.a-jwt",
}


def test_refused_visas_mount_nothing_but_the_login_works_and_each_reason_is_audited(
    stack, keys, docker_client, settings
):
    before = requests.get(f"{REGISTRY}/_test/jwks-fetches", timeout=10).json()
    person = researcher(DORA, [make(keys) for make in BAD_VISAS.values()])
    person.start_server()
    assert set(look_at_data(person)["ls"]) == {"reference", "README"}
    refused = [
        a["reason"] for a in audit(docker_client, settings) if a["event"] == "visa-refused" and a["user"] == DORA
    ]
    print("\n" + "\n".join(refused))
    assert len(refused) >= len(BAD_VISAS) - 1  # the expired one may be told as an expiry instead
    for fragment in ("key", "expired", "jku", "'self'", "case", "conditions", "malformed"):
        assert any(fragment in reason for reason in refused), (fragment, refused)
    fetched = requests.get(f"{REGISTRY}/_test/jwks-fetches", timeout=10).json()[len(before) :]
    assert "rogue" not in fetched  # a key set a visa names but the operator does not trust is never fetched
    person.stop_server()


def test_a_revoked_dataset_stops_the_server_and_the_next_start_keeps_the_rest(stack, docker_client, settings):
    ben = stack["people"][BEN]
    lines = [
        line
        for line in (stack["access_dir"] / "approvals.csv").read_text().splitlines()
        if line != f"{BEN},,DACO-2,pcawg"
    ]
    revoked = time.monotonic()
    (stack["access_dir"] / "approvals.csv").write_text("\n".join(lines) + "\n")
    wait_for(lambda: not containers_of(docker_client, BEN), RECHECK * 3 + 60, "Ben's server to stop")
    print(f"\ndataset revocation to stopped server: {time.monotonic() - revoked:.1f} s (re-check every {RECHECK} s)")
    ended = [a for a in audit(docker_client, settings) if a["event"] == "recheck-datasets" and a["user"] == BEN]
    assert any(r["dataset"] == "pcawg" and r["decision"] == "denied" for a in ended for r in a["refused"])
    # Ben is told which dataset ended and why, and still has the hub.
    page = ben.session.get(ben.url("/hub/home"), timeout=30).text
    assert "hubstack-datasets-notice" in page and "pcawg" in page and "not on the approval list for pcawg" in page
    # The container goes first; the hub is done with the stop (network and disk released) a moment later,
    # and only then offers the start again.
    wait_for(lambda: "" not in ben.me()["servers"], 60, "the hub to finish stopping Ben's server")
    ben.start_server()
    assert set(look_at_data(ben)["ls"]) == {"cohort", "reference", "README"}  # daco: never (no cloud access)
    ben.stop_server()


def test_the_operator_sees_each_dataset_and_who_has_it(stack):
    listing = json.loads(run_hubstack("datasets", "--json", env=stack["env"]).stdout)
    mounted = {row["name"]: row["mounted_by"] for row in listing}
    assert mounted["pcawg"] == [ANN] and set(mounted["reference"]) == {ANN, CAL}
    check = run_hubstack("access", "check", ANN, env=stack["env"], check=False)
    assert check.returncode == 0, check.stderr
    rows = {line.split()[0]: line.split()[2] for line in check.stdout.split("datasets:")[1].strip().splitlines()}
    assert rows == {"pcawg": "approved", "cohort": "denied", "reference": "approved", "daco": "approved"}


def test_a_datasets_file_the_hub_cannot_mount_stops_the_cli_and_the_hub(stack, docker_client, settings, tmp_path):
    access_dir = tmp_path / "access"
    access_dir.mkdir()
    (access_dir / "approvals.csv").write_text(approvals())
    env = {**stack["env"], "HUBSTACK_ACCESS_DIR": str(access_dir), "HUBSTACK_NAME": f"{NAME}-bad"}
    for text, says in (
        ('[datasets.gone]\nfolder = "/nonexistent/hubstack-ci"\ngrant = "open"\n', "does not exist on this machine"),
        ('[datasets."a b"]\nvolume = "v"\ngrant = "open"\n', "is not a dataset name"),
    ):
        (access_dir / "datasets.toml").write_text(text)
        result = run_hubstack("up", env=env, check=False, timeout=120)
        assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
        assert says in result.stderr
    # The hub image itself, started past the CLI, with a volume that is not there.
    (access_dir / "datasets.toml").write_text(f'[datasets.gone]\nvolume = "{NAME}-no-such-volume"\ngrant = "open"\n')
    hub_env = {k: v for k, v in env.items() if k not in ("HUBSTACK_SECRETS_DIR", "HUBSTACK_ACCESS_DIR")}
    container = docker_client.containers.run(
        settings.names.image("hub"),
        environment=hub_env,
        detach=True,
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            env["HUBSTACK_SECRETS_DIR"]: {"bind": SECRETS_MOUNT, "mode": "ro"},
            str(access_dir): {"bind": ACCESS_MOUNT, "mode": "ro"},
        },
    )
    try:
        assert container.wait(timeout=120)["StatusCode"] != 0
        last = container.logs(stdout=False, stderr=True).decode().strip().splitlines()[-1]
        assert last.startswith("hubstack: ") and f"{NAME}-no-such-volume does not exist" in last, last
    finally:
        container.remove(force=True)
