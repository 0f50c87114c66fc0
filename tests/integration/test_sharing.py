"""Sharing a server under the access check, end to end, in production mode.

Ana's server mounts the controlled dataset `pcawg` and the folder of the group
`genomics`. She may share it only with colleagues approved for the hub, for
pcawg and in genomics; a share to anyone else is refused and says why. Bo,
approved for all of it, works in her server (reads the dataset, writes into her
home) and loses it, open connections included, when she ends the share and
when his approval ends, while Ana works on. Researchers log in through the
OIDC provider's form; approvals are lines of approvals.csv.
"""

import threading
import time
from urllib.parse import quote

import pytest
import requests
import websocket
from test_access import (  # the production set-up of the access tests: one provider, one registry
    HUB,
    OIDC,
    audit,
    fresh_hub_data,
    production_env,
    production_folders,
    services,  # noqa: F401 - the fixture
)
from test_pages import WELCOME

from helpers import REPO, operator_files, run_hubstack, user_servers, wait_for
from hubclient import OIDCUser
from hubstack.common.contract import SHARE_FOLDER, WELCOME_TEMPLATE

ANA, BO, CY, DEE, EVE = (f"{n}@example.org" for n in ("ana", "bo", "cy", "dee", "eve"))
RECHECK = 6  # the hub's re-check; a visitor's server re-asks every 5 s (notebook/hubstack_visitors.py)
ENDS_WITHIN = 2 * RECHECK + 5 + 8  # a whole re-check missed, the server's round, and slack for a busy machine


def approvals(lines):
    return "email,approved_until,note,dataset\n" + "".join(f"{line}\n" for line in lines)


HUB_LINES = [f"{who},,hub" for who in (ANA, BO, CY, DEE, EVE)]
PCAWG_LINES = [f"{who},,DACO,pcawg" for who in (ANA, BO, EVE)]  # not Cy
GENOMICS = (ANA, BO, CY)  # in groups.toml and in the provider's groups claim


@pytest.fixture(scope="module")
def stack(services, tmp_path_factory, docker_client, settings):  # noqa: F811
    folder = tmp_path_factory.mktemp("sharing")
    pcawg = folder / "pcawg"
    pcawg.mkdir()
    pcawg.chmod(0o755)
    (pcawg / "calls.tsv").write_text("donor\tgene\nDO1\tTP53\n")
    secrets_dir, access_dir = production_folders(folder, approvals(HUB_LINES + PCAWG_LINES))
    (access_dir / "datasets.toml").write_text(
        f'[datasets.pcawg]\ntitle = "PCAWG somatic calls"\nfolder = "{pcawg}"\ngrant = "list"\n'
    )
    members = ", ".join(f'"{who}"' for who in GENOMICS)
    (access_dir / "groups.toml").write_text(f"[groups.genomics]\nmembers = [{members}]\nfolder = true\n")
    # Operators named by group: the log-in then manages the hub's groups from the provider's claim.
    env = production_env(
        secrets_dir, access_dir, HUBSTACK_ACCESS_RECHECK=str(RECHECK), HUBSTACK_ADMIN_GROUPS="hub-operators"
    )
    fresh_hub_data(docker_client, settings)
    with operator_files({REPO / SHARE_FOLDER / "templates" / WELCOME_TEMPLATE: WELCOME.encode()}):
        run_hubstack("up", env=env, timeout=600)
        yield {"access_dir": access_dir}
    fresh_hub_data(docker_client, settings)
    run_hubstack("up", timeout=600)  # back to the dev-mode hub the other modules use
    for volume in docker_client.volumes.list(filters=settings.names.label_filter("dataset")):
        volume.remove(force=True)


def set_approvals(stack, lines):
    (stack["access_dir"] / "approvals.csv").write_text(approvals(lines))


def researcher(email):
    """Logged in through the provider, whose groups claim puts genomics' members in the hub's group too."""
    claims = {"email": email, "email_verified": True, "groups": ["genomics"] if email in GENOMICS else []}
    requests.put(f"{OIDC}/users/{quote(email, safe='')}", json=claims, timeout=10).raise_for_status()
    person = OIDCUser(HUB, email)
    person.login()
    return person


@pytest.fixture(scope="module")
def ana(stack):
    person = researcher(ANA)
    person.start_server()
    yield person


def share_api(owner, **body):
    return owner.api("POST", f"/shares/{quote(owner.name, safe='@')}/", json=body)


def shares_of(owner):
    response = owner.api("GET", f"/shares/{quote(owner.name, safe='@')}/")
    response.raise_for_status()
    return sorted(s["user"]["name"] if s["user"] else f"group:{s['group']['name']}" for s in response.json()["items"])


def share_page(owner, **form):
    """POST the /hub/share form as its buttons do; the page that comes back."""
    xsrf = owner.session.cookies.get("_xsrf", path="/hub/")
    return owner.session.post(owner.url("/hub/share"), data={**form, "_xsrf": xsrf}, timeout=60)


def events(docker_client, settings, kind, user):
    return [r for r in audit(docker_client, settings) if r["event"] == kind and r["user"] == user]


def test_a_share_to_anyone_not_approved_for_what_the_server_holds_is_refused(ana, stack, docker_client, settings):
    for email in (CY, DEE, EVE):
        researcher(email)  # each has logged in once, so the hub knows them
    set_approvals(stack, [line for line in HUB_LINES if not line.startswith(DEE)] + PCAWG_LINES)
    refused = {
        CY: "not approved for pcawg",  # approved for the hub, not for the dataset the server mounts
        EVE: "not a member of genomics",  # approved for both, not in the group whose folder it mounts
        DEE: "not approved for this hub",  # approval ended since her log-in
        "nobody@example.org": "has not logged in to this hub yet",
    }
    for email, why in refused.items():
        response = share_api(ana, user=email)
        assert response.status_code == 403 and why in response.json()["message"], (email, response.text)
    page = share_page(ana, action="share", kind="user", **{"with": CY})
    assert (
        page.status_code == 403 and "not approved for pcawg" in page.text and 'id="hubstack-share-error"' in page.text
    )
    # More than access to the server is never granted: not the right to start or stop it.
    response = share_api(ana, user=BO, scopes=[f"servers!server={ANA}/"])
    assert response.status_code == 400 and "access to the server only" in response.json()["message"]
    # Share codes are off: a link lets in whoever holds it.
    code = ana.api("POST", f"/share-codes/{quote(ANA, safe='@')}/", json={})
    assert code.status_code == 403 and "Share codes are off" in code.json()["message"]
    # A group share needs every member to pass: Cy, in genomics, is not approved for pcawg.
    response = share_api(ana, group="genomics")
    assert response.status_code == 403 and f"{CY} is not approved for pcawg" in response.json()["message"]
    assert shares_of(ana) == []
    set_approvals(stack, HUB_LINES + PCAWG_LINES + [f"{CY},,DACO,pcawg"])
    assert share_api(ana, group="genomics").status_code == 200
    assert shares_of(ana) == ["group:genomics"]
    share_page(ana, action="end", kind="group", **{"with": "genomics"})
    assert shares_of(ana) == []
    for email in (CY, DEE, EVE):
        lines = events(docker_client, settings, "share-refused", email)
        assert lines and all(r["owner"] == ANA and r["decision"] != "approved" for r in lines), lines
    set_approvals(stack, HUB_LINES + PCAWG_LINES)


def test_an_approved_colleague_works_in_the_shared_server_and_loses_it_with_the_share_or_approval(
    ana, stack, docker_client, settings
):
    bo = researcher(BO)
    page = share_page(ana, action="share", kind="user", **{"with": BO})
    assert page.status_code == 200 and f"Shared with {BO}" in page.text, page.text[-1500:]
    assert shares_of(ana) == [BO]
    link = ana.server_url + "lab"
    assert link in page.text  # the link to give
    assert bo.visit(ana.server_url).status_code == 200
    kernel = bo.start_kernel()
    out, error = bo.run(
        kernel["id"],
        "import os\nprint(open('/data/pcawg/calls.tsv').read().split()[2])\n"
        "open(os.path.expanduser('~/from-bo.txt'), 'w').write('hello ana')\nprint(os.environ['JUPYTERHUB_USER'])",
    )
    assert error is None and out.split() == ["DO1", ANA], (out, error)
    assert ana.contents("from-bo.txt").json()["content"] == "hello ana"
    assert [r["owner"] for r in events(docker_client, settings, "share-created", BO)] == [ANA]
    assert events(docker_client, settings, "share-used", BO)

    # The owner ends the share: Bo's open websocket is closed, and he is not let in again.
    watcher = Watch(bo, kernel["id"])
    started = time.monotonic()
    share_page(ana, action="end", kind="user", **{"with": BO})
    watcher.wait_closed(ENDS_WITHIN)
    wait_for(lambda: shut_out(bo), ENDS_WITHIN, "Bo refused by Ana's server")
    print(f"share ended by the owner: Bo's websocket closed after {watcher.closed_at - started:.1f} s")
    assert shares_of(ana) == []

    # Shared again; then Bo's approval ends: the hub's re-check ends the share, the server closes his way in.
    share_page(ana, action="share", kind="user", **{"with": BO})
    assert bo.visit(ana.server_url).status_code == 200
    watcher = Watch(bo, kernel["id"])
    ana_kernel = ana.start_kernel()
    container = user_servers(docker_client, ANA)[0].id
    started = time.monotonic()
    set_approvals(stack, [line for line in HUB_LINES + PCAWG_LINES if not line.startswith(BO)])
    watcher.wait_closed(ENDS_WITHIN)
    wait_for(lambda: shut_out(bo), ENDS_WITHIN, "Bo refused by Ana's server")
    print(f"approval ended: Bo's websocket closed after {watcher.closed_at - started:.1f} s")
    # Ana works on, in the same server.
    out, error = ana.run(ana_kernel["id"], "print(6 * 7)")
    assert (out.strip(), error) == ("42", None)
    assert [c.id for c in user_servers(docker_client, ANA)] == [container]
    assert shares_of(ana) == []
    (ended,) = [r for r in events(docker_client, settings, "share-ended", BO) if r["source"] != "owner"]
    assert ended["owner"] == ANA and "not approved for this hub" in ended["reason"], ended
    set_approvals(stack, HUB_LINES + PCAWG_LINES)


def test_a_visitor_whose_dataset_approval_ends_loses_the_share(ana, stack, docker_client, settings):
    bo = researcher(BO)
    share_page(ana, action="share", kind="user", **{"with": BO})
    assert bo.visit(ana.server_url).status_code == 200
    watcher = Watch(bo, bo.start_kernel()["id"])
    set_approvals(stack, [line for line in HUB_LINES + PCAWG_LINES if line != f"{BO},,DACO,pcawg"])
    watcher.wait_closed(ENDS_WITHIN)
    wait_for(lambda: shares_of(ana) == [], ENDS_WITHIN, "the share to end")
    ended = [r for r in events(docker_client, settings, "share-ended", BO) if "pcawg" in r["reason"]]
    assert ended and ended[-1]["owner"] == ANA, ended
    # Bo still uses the hub himself: only the share ended.
    assert bo.me()["name"] == BO
    set_approvals(stack, HUB_LINES + PCAWG_LINES)


def test_the_owner_ends_shares_through_the_api_too(ana, stack, docker_client, settings):
    """JupyterHub's PATCH (one share) and DELETE (all of a server's) end the visitor's way in, as the page does."""
    bo = researcher(BO)
    path = f"/shares/{quote(ANA, safe='@')}/"
    before = len([r for r in events(docker_client, settings, "share-ended", BO) if r["source"] == "owner"])
    for end in (lambda: ana.api("PATCH", path, json={"user": BO}), lambda: ana.api("DELETE", path)):
        made = share_api(ana, user=BO)
        assert made.status_code < 300, made.text
        assert bo.visit(ana.server_url).status_code == 200
        watcher = Watch(bo, bo.start_kernel()["id"])
        ended = end()
        assert ended.status_code < 300, ended.text
        watcher.wait_closed(ENDS_WITHIN)
        wait_for(lambda: shut_out(bo), ENDS_WITHIN, "Bo refused by Ana's server")
        assert shares_of(ana) == []
    by_owner = [r for r in events(docker_client, settings, "share-ended", BO) if r["source"] == "owner"]
    assert len(by_owner) == before + 2 and all(r["owner"] == ANA for r in by_owner), by_owner


def test_the_denial_page_carries_the_operators_text(stack):
    requests.put(
        f"{OIDC}/users/{quote('zed@example.org', safe='')}",
        json={"email": "zed@example.org", "email_verified": True},
        timeout=10,
    ).raise_for_status()
    page = OIDCUser(HUB, "zed@example.org").attempt_login()
    assert page.status_code == 403 and "Not approved for data access" in page.text
    assert WELCOME in page.text  # what data is here and where to apply, in the operator's words


def shut_out(person):
    """The shared server no longer lets person in (refused, or sent back to log in)."""
    response = person.server_api("GET", "/contents/", allow_redirects=False)
    return response.status_code in (302, 403)


class Watch:
    """A kernel websocket held open, as a visitor's notebook holds one; notes when the server closes it."""

    def __init__(self, person, kernel_id):
        self.ws = person.channels(kernel_id)
        self.closed_at = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        self.ws.settimeout(1)
        while True:
            try:
                if not self.ws.recv() and not self.ws.connected:
                    break
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError):
                break
        self.closed_at = time.monotonic()

    def wait_closed(self, timeout):
        self.thread.join(timeout)
        assert self.closed_at is not None, f"the websocket was still open after {timeout} s"
