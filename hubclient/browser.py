"""A client that uses a hub the way a browser does.

It logs in through the login form (with the hub's XSRF token), starts a
server from /hub/spawn, follows the OAuth redirects into the user's server,
and runs code in a kernel over the kernel's websocket. Nothing here uses an
admin token or internal API.
"""

import html
import json
import re
import time
import uuid
from urllib.parse import quote, urljoin

import requests
import websocket


class HubError(AssertionError):
    pass


class KernelDied(HubError):
    pass


class BrowserUser:
    def __init__(self, base_url, name, password=""):
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.password = password
        self.session = requests.Session()
        self.server_url = None  # e.g. <hub url>/user/jane-2edoe/ once started

    @classmethod
    def with_server(cls, base_url, name, password=""):
        """Log in through the form and start the server, as a researcher's first visit does."""
        user = cls(base_url, name, password)
        user.login()
        user.start_server()
        return user

    def url(self, path):
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def xsrf_headers(self, cookie="_xsrf", path=None):
        value = next(
            (c.value for c in self.session.cookies if c.name == cookie and (path is None or c.path == path)), None
        )
        return {"X-XSRFToken": value} if value else {}

    # -- hub ------------------------------------------------------------------
    def login(self):
        page = self.session.get(self.url("/hub/login"), timeout=30)
        page.raise_for_status()
        xsrf = self.session.cookies.get("_xsrf", path="/hub/")
        form = {"username": self.name, "password": self.password, "_xsrf": xsrf}
        response = self.session.post(self.url("/hub/login"), data=form, timeout=60)
        if "jupyterhub-session-id" not in self.session.cookies or response.url.endswith("/hub/login"):
            raise HubError(f"login as {self.name!r} failed: {response.status_code} {response.url}")
        return response

    def api(self, method, path, **kwargs):
        headers = {**self.xsrf_headers(path="/hub/"), **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(f"/hub/api{path}"), headers=headers, timeout=60, **kwargs)

    def me(self):
        response = self.api("GET", "/user")
        response.raise_for_status()
        return response.json()

    def spawn_form(self, form):
        """POST the spawn page's form (e.g. {"profile": "large"}) as its Start button does; the response."""
        xsrf = self.session.cookies.get("_xsrf", path="/hub/")
        return self.session.post(self.url("/hub/spawn"), data={**form, "_xsrf": xsrf}, timeout=120)

    def start_server(self, timeout=180, form=None):
        """GET /hub/spawn as the browser's 'Start My Server' does (or submit its form), then wait for ready."""
        started = time.monotonic()
        if form is None:
            self.session.get(self.url("/hub/spawn"), timeout=120, allow_redirects=True)
        else:
            response = self.spawn_form(form)
            if response.status_code >= 400:
                raise HubError(f"the spawn form was refused: {response.status_code} {response.text[-500:]}")
        while time.monotonic() - started < timeout:
            server = self.me()["servers"].get("")
            if server and server.get("ready"):
                self.server_url = self.url(server["url"])
                elapsed = time.monotonic() - started
                self.open_server()  # as the browser is sent on to the server: OAuth into it
                return elapsed
            if server is None and time.monotonic() - started > 10:
                raise HubError(f"server of {self.name} did not start: {self.spawn_message()}")
            time.sleep(0.25)
        raise HubError(f"server of {self.name} not ready after {timeout} s: {self.spawn_message()}")

    def progress(self, timeout=180):
        """The spawn's progress messages, as the spawn-pending page shows them, until ready or failed."""
        response = self.session.get(
            self.url(f"/hub/api/users/{quote(self.name, safe='@')}/server/progress"),
            headers=self.xsrf_headers(path="/hub/"),
            stream=True,
            timeout=(30, timeout),
        )
        messages = []
        with response:
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    messages.append(event.get("message", ""))
                    if event.get("ready") or event.get("failed"):
                        break
        return messages

    def spawn_message(self):
        page = self.session.get(self.url("/hub/home"), timeout=30)
        return page.text[-500:]

    def stop_server(self, timeout=120):
        response = self.api("DELETE", f"/users/{quote(self.me()['name'], safe='@')}/server")
        if response.status_code not in (202, 204):
            raise HubError(f"stopping the server failed: {response.status_code} {response.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "" not in self.me()["servers"]:
                return
            time.sleep(0.5)
        raise HubError("server did not stop")

    # -- user server --------------------------------------------------------
    def open_server(self):
        """Follow the OAuth dance into the user server, as opening /user/<name>/lab does."""
        response = self.session.get(self.server_url + "lab", timeout=60)
        if response.status_code != 200 or "jupyter-config-data" not in response.text:
            raise HubError(f"opening {self.server_url}lab gave {response.status_code} at {response.url}")
        return response

    def visit(self, server_url):
        """Open someone else's server, shared with me, as a browser does: the hub asks once whether to let
        it identify me (its Authorize button), and later visits go straight in. JupyterLab's response."""
        response = self.session.get(server_url + "lab", timeout=60)
        if "/oauth2/authorize" in response.url and 'name="scopes"' in response.text:
            scopes = [html.unescape(s) for s in re.findall(r'name="scopes" value="([^"]*)"', response.text)]
            form = {"_xsrf": self.session.cookies.get("_xsrf", path="/hub/"), "scopes": scopes}
            response = self.session.post(response.url, data=form, timeout=60)
        self.server_url = server_url
        return response

    def server_api(self, method, path, **kwargs):
        path_prefix = self.server_url.split(self.base_url, 1)[1]
        headers = {**self.xsrf_headers(path=path_prefix), **kwargs.pop("headers", {})}
        return self.session.request(method, self.server_url + "api" + path, headers=headers, timeout=60, **kwargs)

    def start_kernel(self, name=None):
        response = self.server_api("POST", "/kernels", json={"name": name} if name else {})
        if response.status_code != 201:
            raise HubError(f"starting a kernel failed: {response.status_code} {response.text[:300]}")
        return response.json()

    def kernels(self):
        response = self.server_api("GET", "/kernels")
        response.raise_for_status()
        return response.json()

    def contents(self, path=""):
        return self.server_api("GET", f"/contents/{path}")

    def channels(self, kernel_id, timeout=60):
        """The kernel's websocket, opened as JupyterLab keeps one open per notebook."""
        ws_url = self.server_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        return websocket.create_connection(ws_url, cookie=cookie, timeout=timeout)

    def run(self, kernel_id, code, timeout=120, displays=None):
        """Execute code over the kernel websocket; return (stdout text, error or None).

        displays: a list to which each rich output's data ({MIME type: content}: a plot, a table, an R value)
        is appended.
        """
        ws = self.channels(kernel_id, timeout)
        try:
            msg_id = uuid.uuid4().hex
            ws.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "msg_type": "execute_request",
                            "username": self.name,
                            "session": uuid.uuid4().hex,
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "buffers": [],
                        "content": {
                            "code": code,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                        },
                    }
                )
            )
            out, error = [], None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                # Short reads: the server's websocket pings would otherwise keep one recv() waiting forever.
                ws.settimeout(max(0.1, min(5, deadline - time.monotonic())))
                try:
                    msg = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                kind = msg["msg_type"]
                if kind == "status" and msg["content"]["execution_state"] in ("restarting", "dead"):
                    raise KernelDied(f"kernel {kernel_id} died while running the cell (the server restarts it)")
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "execute_result":
                    out.append(msg["content"]["data"].get("text/plain", "") + "\n")
                    if displays is not None:
                        displays.append(msg["content"]["data"])
                elif kind == "display_data" and displays is not None:
                    displays.append(msg["content"]["data"])
                elif kind == "error":
                    error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(out), error
            raise HubError(f"no answer from kernel {kernel_id} within {timeout} s")
        finally:
            ws.close()


class OIDCUser(BrowserUser):
    """A researcher who logs in through the OpenID Connect provider's form (oidc-provider-mock)."""

    def attempt_login(self):
        """Hub -> provider's form -> POST the subject -> hub callback; the final response, whatever it is."""
        # next=/hub/home: land on the home page; without it the hub starts the server at once.
        form = self.session.get(self.url("/hub/oauth_login?next=%2Fhub%2Fhome"), timeout=30)
        if form.status_code != 200 or 'name="sub"' not in form.text:
            raise HubError(f"no provider login form at {form.url}: {form.status_code}")
        return self.session.post(form.url, data={"sub": self.name}, timeout=90)

    def login(self):
        response = self.attempt_login()
        if response.status_code != 200 or "jupyterhub-session-id" not in self.session.cookies:
            raise HubError(
                f"login as {self.name!r} failed: {response.status_code} {response.url}\n{response.text[-800:]}"
            )
        return response
