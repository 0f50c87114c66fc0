"""`hubstack users`: whose a volume is (labels and the exact name, never a prefix), the
confirmation of a purge, the hub's side of the listing, and what the tables say."""

import stat

import pytest

from hubstack.common.contract import LABEL_INSTANCE, LABEL_ROLE, LABEL_USER, Names, Role
from hubstack.common.uservolumes import of_user, orphans, owner
from hubstack.errors import NotConfirmed, exit_code
from hubstack.users import approval_cell, check_confirmation, human_size, measured, row, servers_cell, total
from hubstack_hub.access import last_access_decisions
from hubstack_hub.audit import AuditLog
from hubstack_hub.decision import APPROVED, DENIED, Decision
from hubstack_hub.names import docker_escape
from hubstack_hub.users import HubAPI, listing, server_state, service_token

NAMES = Names("ci")


def volume(user, instance="ci", role=Role.HOME, name=None):
    labels = {LABEL_INSTANCE: instance, LABEL_ROLE: role}
    if user is not None:
        labels[LABEL_USER] = user
    return {
        "Name": name or f"{instance}-home-{docker_escape(user or 'x')}",
        "Labels": labels,
        "CreatedAt": "2026-01-02T03:04:05Z",
    }


# -- whose a volume is -------------------------------------------------------------------------
HOSTILE = ["ann", "anna", "ann.b", "ann-2eb", "ann@example.org", "ann@example.org.evil", "a", "ann+x@example.org"]


@pytest.mark.parametrize("user", HOSTILE)
def test_a_user_gets_exactly_their_own_volumes(user):
    volumes = [volume(u) for u in HOSTILE] + [volume(user, role="scratch", name="other-name")]
    mine = of_user(volumes, NAMES, user)
    assert {v["Labels"][LABEL_USER] for v in mine} == {user}
    assert len(mine) == 2  # the home and the other per-user volume, whatever its name


def test_a_prefix_of_a_volume_name_is_not_ownership():
    ann, anna = volume("ann"), volume("anna")
    assert anna["Name"].startswith(ann["Name"])  # ci-home-anna begins with ci-home-ann
    assert of_user([ann, anna], NAMES, "ann") == [ann]
    assert of_user([anna], NAMES, "ann") == []


def test_escaped_names_that_look_alike_stay_apart():
    # "ann.b" escapes to ann-2eb, and "ann-2eb" to ann-2d2eb: the labels hold the names themselves.
    dotted, dashed = volume("ann.b"), volume("ann-2eb")
    assert dotted["Name"] == "ci-home-ann-2eb"
    assert of_user([dotted, dashed], NAMES, "ann-2eb") == [dashed]


def test_only_this_instance_and_only_labelled_volumes():
    theirs = volume("ann", instance="ci2")
    unlabelled = {"Name": "ci-home-ann", "Labels": None}
    no_user = volume(None, role=Role.ENVIRONMENT)
    assert of_user([theirs, unlabelled, no_user], NAMES, "ann") == []
    assert owner(theirs, NAMES) is None and owner(unlabelled, NAMES) is None and owner(no_user, NAMES) is None
    assert of_user([volume("")], NAMES, "") == []  # an empty name owns nothing


def test_orphans_are_per_user_volumes_whose_user_is_not_in_the_hub():
    volumes = [volume("ann"), volume("anna"), volume(None, role=Role.HUB_DATA), volume("bob", instance="ci2")]
    assert [owner(v, NAMES) for v in orphans(volumes, NAMES, ["anna"])] == ["ann"]
    assert orphans(volumes, NAMES, ["ann", "anna"]) == []


# -- the confirmation --------------------------------------------------------------------------
def test_the_exact_name_confirms():
    check_confirmation("ann@example.org", "ann@example.org")


@pytest.mark.parametrize("typed", ["anna", "an", "ANN", " ann", "ann ", "", None, "ann\n"])
def test_anything_else_does_not(typed):
    with pytest.raises(NotConfirmed) as caught:
        check_confirmation("ann", typed)
    assert exit_code(caught.value) == 2
    assert "nothing was deleted" in str(caught.value) and "\n" not in str(caught.value).strip()


# -- the hub's side ------------------------------------------------------------------------------
def test_the_last_access_decision_of_each_user(tmp_path):
    audit = AuditLog(tmp_path / "access.jsonl")
    audit.write("login", "ann", Decision(APPROVED, "list", "listed"), 0)
    audit.write("recheck", "ann", Decision(DENIED, "list", "not listed"), 0)
    audit.write("operator-check", "ann", Decision(APPROVED, "list", "listed"), 0)  # a question, not a decision
    audit.write("spawn-datasets", "ann", Decision(APPROVED, "open", ""), 0)
    audit.write("user-deleted", "ann", Decision("deleted", "hub", ""), 0)
    audit.write("spawn", "anna", Decision(APPROVED, "registry", "record"), 0)
    with open(tmp_path / "access.jsonl", "a") as f:
        f.write("not json\n")
    last = last_access_decisions(audit)
    assert (last["ann"]["event"], last["ann"]["decision"]) == ("recheck", DENIED)
    assert (last["anna"]["event"], last["anna"]["source"]) == ("spawn", "registry")
    assert set(last) == {"ann", "anna"}


class Pages(HubAPI):
    """The hub's paginated answers, to see that every page is read."""

    def __init__(self, users, limit):
        super().__init__("token")
        self.all, self.limit, self.asked = users, limit, []

    def call(self, method, path, query=None, accept=None):
        self.asked.append((method, path, dict(query or {}), accept))
        offset = query["offset"]
        end = offset + self.limit
        following = {"offset": end, "limit": self.limit} if end < len(self.all) else None
        return 200, {"items": self.all[offset:end], "_pagination": {"next": following}}


def test_every_page_of_users_is_read_with_stopped_servers():
    users = [{"name": f"u{i}", "servers": {}} for i in range(5)]
    api = Pages(users, limit=2)
    assert [u["name"] for u in api.users()] == ["u0", "u1", "u2", "u3", "u4"]
    assert len(api.asked) == 3
    assert all(q["include_stopped_servers"] == "1" and "pagination" in a for _, _, q, a in api.asked)


def test_server_states_and_approval_in_the_listing():
    assert server_state({"ready": True, "pending": None}) == "running"
    assert server_state({"ready": False, "pending": "spawn"}) == "starting"
    assert server_state({"ready": False, "pending": "stop"}) == "stopping"
    assert server_state({"ready": False, "pending": None, "stopped": True}) == "stopped"
    servers = {"": {"ready": True}, "lab2": {"ready": False, "stopped": True}}
    api = Pages([{"name": "ann", "last_activity": "2026-01-01T00:00:00Z", "servers": servers}], limit=50)
    (dev,) = listing(api, "dev")
    assert [(s["name"], s["state"]) for s in dev["servers"]] == [("", "running"), ("lab2", "stopped")]
    assert dev["approval"] == "dev"
    record = {"decision": DENIED, "source": "list", "reason": "not listed", "time": "t", "event": "recheck"}
    (prod,) = listing(api, {"ann": {**record, "latency_ms": 1.0, "user": "ann"}})
    assert prod["approval"] == record
    (unknown,) = listing(api, {})
    assert unknown["approval"] is None


def test_the_service_token_is_made_once_and_kept_private(tmp_path):
    path = tmp_path / "token"
    first = service_token(path)
    assert len(first) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert service_token(path) == first


# -- what the tables say -------------------------------------------------------------------------
def test_sizes():
    assert [human_size(n) for n in (0, 999, 1000, 12_345_678, 3 * 10**9, 2 * 10**12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "12.3 MB",
        "3.0 GB",
        "2.0 TB",
    ]
    assert human_size(None) == "?"


def test_sizes_from_du_belong_to_the_volume_mounted_at_each_path():
    batch = ["ci-home-ann", "ci-home-anna", "ci-home-olga-40example-2eorg"]
    said = "3000123\t/v/0\n1000456\t/v/1\nnot a line\n77\t/v/9\n"  # /v/2: vanished, unreadable
    assert measured(said, batch) == {"ci-home-ann": 3000123, "ci-home-anna": 1000456}
    sizes = measured(said, batch)
    rows = [row(volume("ann"), NAMES, sizes), row(volume("anna"), NAMES, sizes)]
    assert total(rows) == 4000579
    assert total([*rows, row(volume("olga@example.org"), NAMES, sizes)]) is None  # unknown, never 0
    assert rows[0] == {
        "name": "ci-home-ann",
        "user": "ann",
        "role": Role.HOME,
        "bytes": 3000123,
        "created": "2026-01-02T03:04:05Z",
    }


def test_servers_and_approval_cells():
    assert servers_cell([]) == "no server"
    assert servers_cell([{"name": "", "state": "running"}, {"name": "lab2", "state": "stopped"}]) == (
        "running, lab2 stopped"
    )
    assert approval_cell("dev", None) == "dev" and approval_cell(None, None) == "none logged"
    record = {"decision": "approved", "source": "list", "event": "login", "time": "T"}
    assert approval_cell(record, lambda t: "5m") == "approved (list, login 5m ago)"
