"""The hub's side of `hubstack users`: its users, their servers and approval, and deleting one,
through the hub's own REST API.

The CLI runs, in the hub container, and reads the one JSON line each prints:

    python3 -m hubstack_hub.users list           every user, servers, last activity, approval
    python3 -m hubstack_hub.users delete NAME    stop NAME's servers, delete NAME from the hub
    python3 -m hubstack_hub.users purged NAME '{"removed": [...], "failed": [...]}'
                                                 audit the volumes the CLI removed

They call the API as the service hubstack_hub.roles.CLI_SERVICE, whose token the hub makes
once (TOKEN_FILE, on the hub data volume, mode 600) and is given at every start. Deleting a
user keeps their volumes: the spawner's delete_forever audits that (hubstack_hub.spawner).
"""

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from hubstack.common.contract import HUB_DATA, HUB_PORT

from .access import last_access_decisions
from .audit import hub_log
from .decision import Decision

TOKEN_FILE = Path(HUB_DATA) / "hubstack-cli-token"
API = f"http://127.0.0.1:{HUB_PORT}/hub/api"
PAGINATION = "application/jupyterhub-pagination+json"


def service_token(path=TOKEN_FILE):
    """The CLI service's token: made once, random, readable by the hub's user only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    token = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


class HubAPIError(RuntimeError):
    pass


class HubAPI:
    def __init__(self, token, base=API):
        self.token, self.base = token, base

    def call(self, method, path, query=None, accept="application/json"):
        """(status, JSON body or None); None for 404, HubAPIError for any other error."""
        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        request = urllib.request.Request(
            url, method=method, headers={"Authorization": f"token {self.token}", "Accept": accept}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return 404, None
            try:
                said = json.loads(err.read()).get("message", "")
            except ValueError:
                said = ""
            raise HubAPIError(f"the hub answered {method} {path} with {err.code} {said}".strip()) from None
        except OSError as err:
            raise HubAPIError(f"the hub's API did not answer ({getattr(err, 'reason', err)})") from None

    def users(self):
        """Every user (all pages), with every server, stopped ones too."""
        found, offset = [], 0
        while True:
            query = {"include_stopped_servers": "1", "offset": offset, "limit": 200}
            _, page = self.call("GET", "/users", query, accept=PAGINATION)
            found += page["items"]
            following = page["_pagination"].get("next")
            if not following:
                return found
            offset = following["offset"]

    def user(self, name):
        """The user (with their active servers), or None."""
        return self.call("GET", f"/users/{quote(name, safe='@')}")[1]

    def stop_servers(self, name, timeout=120):
        """Stop every active server of name and wait until they are gone; their names."""
        user = quote(name, safe="@")
        active = list((self.user(name) or {}).get("servers") or {})
        for server in active:
            self.call("DELETE", f"/users/{user}/server" if server == "" else f"/users/{user}/servers/{server}")
        deadline = time.monotonic() + timeout
        while (self.user(name) or {}).get("servers"):
            if time.monotonic() > deadline:
                raise HubAPIError(f"the servers of {name} did not stop within {timeout} s")
            time.sleep(0.5)
        return active

    def delete_user(self, name):
        self.call("DELETE", f"/users/{quote(name, safe='@')}")


def server_state(server):
    if server.get("ready"):
        return "running"
    if server.get("pending"):
        return {"spawn": "starting", "stop": "stopping"}.get(server["pending"], server["pending"])
    return "stopped"


def listing(api, approvals):
    """approvals: {user: audit record} of the last access decisions, or "dev"."""
    rows = []
    for user in api.users():
        servers = [
            {
                "name": name,
                "state": server_state(s),
                "started": s.get("started"),
                "last_activity": s.get("last_activity"),
            }
            for name, s in sorted((user.get("servers") or {}).items())
        ]
        if approvals == "dev":
            approval = "dev"
        else:
            last = approvals.get(user["name"])
            approval = (
                {k: last.get(k) for k in ("decision", "source", "reason", "time", "event")} if last else None
            )  # None: no decision in the log (kept as long as HUBSTACK_AUDIT_KEEP says)
        rows.append(
            {
                "name": user["name"],
                "created": user.get("created"),
                "last_activity": user.get("last_activity"),
                "servers": servers,
                "approval": approval,
            }
        )
    return rows


def main(argv):
    from hubstack.common.contract import ACCESS_MOUNT, SECRETS_MOUNT
    from hubstack.common.parse import SettingsError
    from hubstack.common.policy import check_mode
    from hubstack.common.settings import load

    usage = "usage: python3 -m hubstack_hub.users list | delete NAME | purged NAME JSON"
    if not argv or (argv[0], len(argv)) not in {("list", 1), ("delete", 2), ("purged", 3)}:
        print(usage, file=sys.stderr)
        return 2
    try:
        settings = load()
        login = check_mode(settings, SECRETS_MOUNT, ACCESS_MOUNT)  # None in dev mode
    except SettingsError as err:
        print(json.dumps({"error": str(err)}))
        return 2
    audit = hub_log(login)
    if argv[0] == "purged":
        done = json.loads(argv[2])
        reason = "hubstack users delete --purge: the user's home and per-user volumes"
        audit.write("user-data-purged", argv[1], Decision("removed", "operator", reason), 0, **done)
        print(json.dumps({"audited": True}))
        return 0
    if not TOKEN_FILE.is_file():
        print(json.dumps({"error": "the hub has no token for hubstack users yet: restart it (hubstack reset)"}))
        return 1
    api = HubAPI(TOKEN_FILE.read_text().strip())
    try:
        if argv[0] == "list":
            approvals = "dev" if login is None else last_access_decisions(audit)
            print(json.dumps({"users": listing(api, approvals)}))
            return 0
        name = argv[1]
        if api.user(name) is None:
            print(json.dumps({"found": False}))
            return 0
        stopped = api.stop_servers(name)
        api.delete_user(name)
        print(json.dumps({"found": True, "stopped": stopped}))
        return 0
    except HubAPIError as err:
        print(json.dumps({"error": str(err)}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
