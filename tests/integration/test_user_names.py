"""Hostile user names through the real log-in form (dev mode): each is refused
cleanly or gets a container and a volume of its own; none collides, none
reaches a label as a template, none takes the hub down."""

import string

import requests

from helpers import health_ok
from hubclient import BrowserUser
from hubstack.common.contract import LABEL_USER, Role

DOMAIN = "example.org"
# Accepted: the same person however the address is cased, and names whose escaped forms come close.
ACCEPTED = {
    "mallory@example.org": ["mallory@example.org", "MALLORY@Example.ORG", "Mallory@EXAMPLE.org"],
    "a-@example.org": ["a-@example.org"],
    "a-2d@example.org": ["a-2d@example.org"],
    "a.b@example.org": ["a.b@example.org"],
    "a-2eb@example.org": ["A-2eB@example.org"],
}


def hostile_names():
    names = [f"a{chr(b)}0@{DOMAIN}" for b in [*range(32), 127]]  # control bytes, NUL included
    look_alikes = ["\u212a", "\u0430", "\u0435", "\u043e", "\uff41", "\u0131", "\u017f", "\u00e9", "\u00df", "\u2024"]
    invisible = ["\u200b", "\u202e", "\ufeff", "\u00a0", "\u2028", "\u3000"]
    for ch in look_alikes + invisible:
        names += [f"{ch}ate@{DOMAIN}", f"mallor{ch}@{DOMAIN}", f"mallory@ex{ch}mple.org"]
    allowed = set(string.ascii_lowercase + string.digits + "._+-_")
    forbidden = [c for c in string.punctuation + " \t" if c not in allowed and c != "@"]
    names += [f"a{c}b@{DOMAIN}" for c in forbidden]  # in the local part,
    names += [f"{c}a@{DOMAIN}" for c in forbidden]  # first,
    names += [f"a@exam{c}ple.org" for c in forbidden]  # and in the domain
    names += [f"{{{t}}}@{DOMAIN}" for t in ("name", "username", "username!r", "0.__class__", "prefix", "")]
    names += [
        f"<script>alert(1)</script>@{DOMAIN}",
        f'"quoted"@{DOMAIN}',
        f"a{{prefix}}@{DOMAIN}",
        f"{{username.x}}@{DOMAIN}",
        f"{{0}}@{DOMAIN}",
        f"}}{{@{DOMAIN}",
        f"$(id)@{DOMAIN}",
        f"`id`@{DOMAIN}",
        "../../etc/passwd",
        "..",
        ".",
        f"a/../b@{DOMAIN}",
        f"%2e%2e@{DOMAIN}",
        f"a%2fb@{DOMAIN}",
        f" lead@{DOMAIN}",
        f"trail@{DOMAIN} ",
        f"new\nline@{DOMAIN}",
        f"mallory@{DOMAIN}\n",
        "@example.org",
        "user@",
        "user@localhost",
        "user@example",
        f"user@@{DOMAIN}",
        "user@-bad.org",
        "user@bad-.org",
        "user@.example.org",
        "user@example..org",
        f"-leading@{DOMAIN}",
        f".leading@{DOMAIN}",
        "a" * 300 + f"@{DOMAIN}",
        "a" * 65 + f"@{DOMAIN}",
        "x@" + "a" * 64 + ".org",
        "x@" + ".".join(["b"] * 120) + ".org",
        "",
        " ",
        "\t",
        "-",
        "--",
        "user@exa_mple.org",
    ]
    return names


def log_in(hub, name):
    """The user name the hub gave the session, or None when the log-in was refused (the login page, 403).

    Anything else (a 500, a hub that does not answer) fails the test.
    """
    session = requests.Session()
    session.get(f"{hub}/hub/login", timeout=30).raise_for_status()
    form = {"username": name, "password": "", "_xsrf": session.cookies.get("_xsrf", path="/hub/")}
    response = session.post(f"{hub}/hub/login", data=form, timeout=30, allow_redirects=False)
    if response.status_code == 302 and "jupyterhub-session-id" in session.cookies:
        me = session.get(
            f"{hub}/hub/api/user", timeout=30, headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")}
        )
        return me.json()["name"]
    assert response.status_code == 403, (repr(name), response.status_code, response.text[-300:])
    return None


def test_hostile_names_are_refused_or_kept_apart(hub, docker_client, settings):
    hub_container = docker_client.containers.get(settings.names.hub_container)
    restarts = hub_container.attrs["RestartCount"]
    hostile = hostile_names()
    assert len(hostile) >= 200
    outcomes = {name: log_in(hub, name) for name in hostile}
    # The log-in form trims whitespace at both ends (Tornado's get_argument, as JupyterHub reads the
    # field): a name that is a valid address once trimmed logs in as exactly that address. Every
    # other hostile name is refused.
    for name, given in outcomes.items():
        assert given is None or (given == name.strip().lower() and given != name), (repr(name), given)
    assert sum(given is None for given in outcomes.values()) >= 200
    for user, variants in ACCEPTED.items():
        assert {log_in(hub, name) for name in variants} == {user}, variants

    # Each accepted person gets a server; every container and home volume is their own.
    containers, volumes = {}, {}
    for user in ACCEPTED:
        researcher = BrowserUser.with_server(hub, user)
        assert researcher.me()["name"] == user
        mine = docker_client.containers.list(filters=settings.names.label_filter(Role.USER_SERVER, user=user))
        assert len(mine) == 1, user
        containers[user] = mine[0].name
        homes = [m["Name"] for m in mine[0].attrs["Mounts"] if m["Destination"] == "/home/jovyan"]
        volumes[user] = homes[0]
        assert mine[0].labels[LABEL_USER] == user
        researcher.stop_server()
    assert len(set(containers.values())) == len(ACCEPTED) and len(set(volumes.values())) == len(ACCEPTED)
    hub_container.reload()
    assert health_ok(hub) and hub_container.attrs["RestartCount"] == restarts
