"""A simulated researcher: what a browser does, step by step, timed.

Log in through the form (the hub's XSRF token), ask for a server at
/hub/spawn (waiting as the hub's "busy" page says when the hub throttles),
follow the spawn's progress event stream as the spawn-pending page does,
open JupyterLab (the OAuth redirects into the user server), start a kernel,
run `1+1` over the kernel websocket, stay a while as an open JupyterLab
does (polling the kernel list), then stop the server from the home page's
API. No admin token, no internal API.
"""

import json
import time

import requests
from docker.errors import DockerException

from hubclient import BrowserUser, HubError

from .stack import BARE_PORT

STEPS = ("login", "spawn", "open", "kernel", "first_result", "idle", "stop")
BARE_STEPS = ("start", "kernel", "first_result", "idle", "stop")
POLL = 0.05  # how often both paths ask "do you answer yet?"
# What can go wrong in a step: counted as that step's failure, never a crash of the run.
FAILURES = (HubError, requests.RequestException, OSError, ValueError, DockerException)
LAB_POLL_SECONDS = 10  # JupyterLab asks for kernels and sessions about this often


class Researcher(BrowserUser):
    def __init__(self, base_url, name):
        super().__init__(base_url, name)
        self.times = {}  # step -> seconds
        self.failed = None  # (step, reason)
        self.throttled = 0  # 429 answers honoured
        self.kernel_id = None

    def timed(self, step, func, *args):
        started = time.monotonic()
        try:
            result = func(*args)
        except FAILURES as err:
            self.failed = (step, f"{type(err).__name__}: {str(err)[:200]}")
            raise
        self.times[step] = time.monotonic() - started
        return result

    # -- the steps --------------------------------------------------------------
    def login(self):
        """The form, with the hub's XSRF token; stops at the hub's redirect (to /hub/spawn), which is the next step."""
        self.session.get(self.url("/hub/login"), timeout=60).raise_for_status()
        form = {"username": self.name, "password": "", "_xsrf": self.session.cookies.get("_xsrf", path="/hub/")}
        response = self.session.post(self.url("/hub/login"), data=form, timeout=60, allow_redirects=False)
        if response.status_code != 302 or "jupyterhub-session-id" not in self.session.cookies:
            raise HubError(f"login as {self.name!r} failed: {response.status_code}")

    def ask_for_server(self, timeout=600):
        """GET /hub/spawn (where the log-in sent us) until the hub takes the request, then the progress stream."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.session.get(self.url("/hub/spawn"), timeout=120, allow_redirects=False)
            if response.status_code != 429:
                break
            # The hub's busy page retries after the Retry-After the hub chose.
            self.throttled += 1
            wait = float(response.headers.get("Retry-After", "30"))
            if time.monotonic() + wait > deadline:
                raise HubError(f"still throttled after {timeout} s")
            time.sleep(wait)
        if response.status_code not in (200, 302, 303):
            raise HubError(f"/hub/spawn answered {response.status_code}")
        url = self.wait_ready(max(1, deadline - time.monotonic()))
        self.server_url = self.url(url)

    def wait_ready(self, timeout):
        """The spawn-pending page's EventSource, read until the hub says ready (or failed)."""
        response = self.session.get(
            self.url(f"/hub/api/users/{self.name}/server/progress"),
            headers=self.xsrf_headers(path="/hub/"),
            stream=True,
            timeout=(30, timeout),
        )
        if response.status_code != 200:
            raise HubError(f"progress stream answered {response.status_code}: {response.text[:200]}")
        with response:
            for line in response.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("failed"):
                    raise HubError(f"spawn failed: {event.get('message', '')[:200]}")
                if event.get("ready"):
                    return event["url"]
        raise HubError("progress stream ended before the server was ready")

    def first_result(self):
        out, error = self.run(self.kernel_id, "1+1", timeout=120)
        if error or out.strip() != "2":
            raise HubError(f"1+1 gave {out!r} {error or ''}")

    def stay(self, seconds):
        """An open JupyterLab: the kernel list every LAB_POLL_SECONDS."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.kernels()
            time.sleep(min(LAB_POLL_SECONDS, max(0, end - time.monotonic())))

    def idle(self, seconds):
        try:
            self.timed("idle", self.stay, seconds)
        except FAILURES:
            pass

    # -- a whole visit --------------------------------------------------------
    def steps_to_result(self):
        """(step, action) from arrival to the first result; TTFR is the sum of their times."""
        return (
            ("login", self.login),
            ("spawn", self.ask_for_server),
            ("open", self.open_server),
            ("kernel", self.open_kernel),
            ("first_result", self.first_result),
        )

    def open_kernel(self):
        self.kernel_id = self.start_kernel()["id"]

    def visit_until_result(self):
        """True when every step worked; a failed step is recorded in self.failed."""
        try:
            for step, action in self.steps_to_result():
                self.timed(step, action)
            return True
        except FAILURES:
            return False

    def stop(self):
        self.stop_server()

    def leave(self):
        try:
            self.timed("stop", self.stop)
        except FAILURES:
            pass

    @property
    def ttfr(self):
        if self.failed or "first_result" not in self.times:
            return None
        return sum(self.times[step] for step, _ in self.steps_to_result())


def wait_answer(session, url, timeout=300):
    """Poll GET <server>/api until Jupyter Server answers with its version (the same check for hub and bare)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = session.get(url, timeout=5, allow_redirects=False)
            if response.status_code == 200 and "version" in response.json():
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(POLL)
    raise HubError(f"{url} did not answer within {timeout} s")


class BareResearcher(Researcher):
    """The baseline: the same image by `docker run`, used directly (no hub, no log-in, no OAuth)."""

    def __init__(self, stack, name):
        super().__init__("http://0.0.0.0", name)
        self.stack, self.container = stack, None

    def start(self):
        self.container = self.stack.bare_run(self.name)
        self.base_url = f"http://{self.stack.ip(self.container)}:{BARE_PORT}"
        self.server_url = self.base_url + "/"
        wait_answer(self.session, self.server_url + "api")

    def steps_to_result(self):
        return (("start", self.start), ("kernel", self.open_kernel), ("first_result", self.first_result))

    def stop(self):
        if self.container is not None:
            self.stack.remove_bare(self.container)
