"""hubstack_hub.grants: which datasets a researcher gets, decided per dataset through the access check."""

import asyncio
import json
from types import SimpleNamespace

from hubstack.common.datasets import Catalogue, Dataset
from hubstack_hub.access import AccessChecker
from hubstack_hub.audit import AuditLog
from hubstack_hub.decision import APPROVED, DENIED, UNAVAILABLE, UNCONFIRMED, Decision
from hubstack_hub.grants import DatasetGate, build_gate, visas_in
from hubstack_hub.sources import ApprovalList

ANN = "ann@example.org"
PCAWG = Dataset("pcawg", "PCAWG", "somatic calls", "registry", folder="/srv/pcawg", cloud_access=True, mount="pcawg")
TRIAL = Dataset("trial", "Trial", "", "list", volume="trial", key="trial", mount="trial")
REFERENCE = Dataset("reference", "GRCh38", "", "open", volume="ref", mount="reference")
COHORT = Dataset("cohort", "Cohort", "", "passport", volume="cohort", key="urn:cohort", mount="cohort")


class StubRegistry:
    name = "registry"

    def __init__(self):
        self.answer, self.asked = Decision(APPROVED, "registry", "approved in the registry"), []

    async def ask(self, user, cloud_access=None):
        self.asked.append((user, cloud_access))
        return self.answer


class StubPassports:
    async def ask(self, user, value, visas):
        if visas == ["good"]:
            return Decision(APPROVED, "passport", f"a visa for {value}"), []
        return Decision(DENIED, "passport", f"no valid visa for {value}"), ["visa 1: signature does not verify"]


class User:
    name = ANN

    async def get_auth_state(self):
        return {"oauth_user": {"ga4gh_passport_v1": ["good"]}}


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def gate(tmp_path, datasets=(PCAWG, TRIAL, REFERENCE, COHORT), grace=20):
    approvals = tmp_path / "approvals.csv"
    approvals.write_text(f"{ANN},,hub\n{ANN},2999-01-01,T-1,trial\n")
    registry, listed, clock = StubRegistry(), ApprovalList(approvals), Clock()
    audit = AuditLog(tmp_path / "audit.jsonl")
    checker = AccessChecker([listed, registry], 10, audit, clock=clock, outage_grace=grace)
    made = DatasetGate(Catalogue(tuple(datasets)), checker, registry, listed, StubPassports(), audit)
    return made, registry, clock, approvals, audit


def lines(audit):
    return [json.loads(line) for line in audit.path.read_text().splitlines()]


def run(coroutine):
    return asyncio.run(coroutine)


def test_each_dataset_is_asked_of_its_own_source_and_the_spawn_is_one_audit_line(tmp_path):
    made, registry, _, _, audit = gate(tmp_path)
    grants = run(made.grants(ANN, ["bad"], "spawn"))
    assert {g.dataset.name: (g.decision.outcome, g.decision.source) for g in grants} == {
        "pcawg": (APPROVED, "registry"),
        "trial": (APPROVED, "list"),
        "reference": (APPROVED, "open"),
        "cohort": (DENIED, "passport"),
    }
    assert registry.asked == [(ANN, True)]  # the dataset's own cloud-access rule, not the hub's
    refused, spawn = lines(audit)
    assert refused["event"] == "visa-refused" and refused["reason"] == "visa 1: signature does not verify"
    assert spawn["event"] == "spawn-datasets"
    assert [m["dataset"] for m in spawn["mounted"]] == ["pcawg", "trial", "reference"]
    assert spawn["refused"] == [
        {"dataset": "cohort", "decision": DENIED, "source": "passport", "reason": "no valid visa for urn:cohort"}
    ]
    assert [g.dataset.name for g in run(made.grants(ANN, ["good"], "spawn")) if g.granted][-1] == "cohort"


def test_dev_mode_mounts_only_open_datasets(tmp_path):
    made = build_gate(Catalogue((PCAWG, REFERENCE)), audit=AuditLog(tmp_path / "audit.jsonl"))
    grants = run(made.grants(ANN, None, "spawn"))
    assert [(g.dataset.name, g.granted, g.decision.source) for g in grants] == [
        ("pcawg", False, "dev-mode"),
        ("reference", True, "open"),
    ]


def test_an_outage_is_ridden_out_per_dataset_then_ends_the_mount(tmp_path):
    made, registry, clock, _, _ = gate(tmp_path, datasets=(PCAWG,), grace=20)
    user = SimpleNamespace(name=ANN)
    run(made.grants(ANN, None, "spawn"))
    registry.answer = Decision(UNAVAILABLE, "registry", "the registry answered HTTP 500")
    clock.now += 5  # within the cache: still approved
    assert run(made.ended(user, ["pcawg"])) == []
    clock.now += 20  # past the cache, within the grace: unavailable keeps the server
    assert run(made.ended(user, ["pcawg"])) == []
    clock.now += 10  # past cache + grace: unconfirmed ends it
    (ended,) = run(made.ended(user, ["pcawg"]))
    assert ended.decision.outcome == UNCONFIRMED


def test_a_revoked_or_withdrawn_dataset_ends_and_the_rest_does_not(tmp_path):
    made, _, _, approvals, _ = gate(tmp_path)
    user = User()
    assert run(made.ended(user, ["trial", "reference", "pcawg"])) == []
    approvals.write_text(f"{ANN},,hub\n")
    ended = run(made.ended(user, ["trial", "reference", "pcawg", "cohort", "retired"]))
    assert {g.dataset.name: g.decision.reason for g in ended} == {
        "retired": "the operator no longer offers this dataset",
        "trial": "not on the approval list for trial",
    }


def test_the_researcher_is_told_what_they_have_and_why_not(tmp_path):
    made, *_ = gate(tmp_path)
    user = SimpleNamespace(name=ANN)
    assert [r["state"] for r in made.home(user)["rows"]] == ["unknown"] * 4
    grants = run(made.grants(ANN, None, "login"))
    rows = {r["name"]: r for r in made.home(user)["rows"]}
    assert rows["cohort"]["state"] == "refused" and rows["cohort"]["reason"] == "no valid visa for urn:cohort"
    assert rows["pcawg"]["state"] == "granted" and rows["pcawg"]["mount"] == "/data/pcawg"
    note = made.note(grants)
    assert "pcawg (PCAWG): mounted read-only at /data/pcawg." in note
    assert "cohort (Cohort): not mounted. no valid visa for urn:cohort." in note
    assert made.home(None) == {"rows": [], "notice": ""}


def test_visas_come_from_the_user_info_in_the_auth_state():
    assert visas_in({"oauth_user": {"ga4gh_passport_v1": ["a.b.c"]}}) == ["a.b.c"]
    assert visas_in({"oauth_user": {}}) is None and visas_in(None) is None


def test_the_hub_has_one_gate_and_one_checker_whatever_traitlets_copies(tmp_path):
    import copy

    made, *_ = gate(tmp_path)
    assert copy.deepcopy(made) is made and copy.deepcopy(made.checker) is made.checker


def test_the_operator_sees_each_datasets_newest_decision_from_the_audit_log(tmp_path):
    from hubstack_hub.access import last_dataset_decisions

    made, *_ = gate(tmp_path)
    run(made.grants(ANN, ["bad"], "spawn"))  # every dataset decided
    run(made.ended(User(), ["trial"]))  # a re-check: only what is mounted
    found = last_dataset_decisions(made.audit, ANN)
    assert set(found) == {"pcawg", "trial", "reference", "cohort"}
    assert found["cohort"][1:3] == (DENIED, "passport") and found["trial"][1] == APPROVED
    assert last_dataset_decisions(made.audit, "nobody@example.org") == {}
