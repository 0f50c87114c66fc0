"""1b. Where a spawn's time goes, step by step, from both sides.

For each round a new researcher asks for a server (/hub/spawn, as in the
spawn benchmark) and the moments of the spawn are read afterwards, each
from where it happens, on the host's one clock: the engine's events for the
container (create, start), the hub's log and the server's own log (with the
engine's timestamps per line), and the researcher's side (the progress
stream's "ready", the server's /api answering through the proxy). The same
for a bare `docker run` of the image: its create and start, its first line,
"is running at", /api answering. Each moment is given in seconds after the
request; the table holds the median over the rounds.
"""

import re
import statistics
import time
from datetime import datetime

from . import report
from .researcher import BareResearcher, Researcher, wait_answer

# (step, where, what marks it): a hub log line matching the pattern, for this user.
HUB_MARKS = (
    ("hub answered /hub/spawn", r"(302|200) GET /hub/spawn"),
    ("hub: server answering, route added", r"Adding user {user} to proxy"),
    ("hub: spawn done", r"User {user} took [0-9.]+ seconds to start"),
)
SERVER_MARKS = (
    ("server: first line of its log", r"."),
    ("server: extensions loaded", r"Jupyter Server [0-9.]+ is running at|ServerApp\] Jupyter Server"),
    ("server: first request from the hub", r"GET /user/{user}/api|GET /api"),
)


def docker_time(stamp):
    """The engine's RFC 3339 timestamp (nanoseconds) as seconds since the epoch."""
    head, _, rest = stamp.partition(".")
    fraction = re.match(r"\d+", rest).group(0)[:6] if rest else "0"
    return datetime.fromisoformat(head.rstrip("Z") + "+00:00").timestamp() + float("0." + fraction)


def log_lines(client, container_id, since):
    raw = client.api.logs(container_id, timestamps=True, since=int(since) - 1).decode(errors="replace")
    for line in raw.splitlines():
        stamp, _, text = line.partition(" ")
        try:
            yield docker_time(stamp), text
        except ValueError:
            continue


def first_mark(lines, pattern, after):
    for moment, text in lines:
        if moment >= after and re.search(pattern, text):
            return moment
    return None


def container_events(client, name, since, until):
    moments = {}
    for event in client.events(since=int(since) - 1, until=int(until) + 1, decode=True, filters={"container": name}):
        action = event.get("status") or event.get("Action")
        if action in ("create", "start") and action not in moments:
            moments[action] = event["timeNano"] / 1e9
    return moments


def hub_round(stack, i):
    user = Researcher(stack.url, stack.user_name("tl", i))
    user.login()
    asked = time.time()
    user.ask_for_server()
    ready = time.time()
    wait_answer(user.session, user.server_url + "api")
    answered = time.time()
    container = stack.server_container(user.name)
    events = container_events(stack.client, container, asked, answered)
    hub_lines = list(log_lines(stack.client, stack.hub, asked))
    server_lines = list(log_lines(stack.client, container, asked))
    name = re.escape(user.name)
    moments = {
        "container created": events.get("create"),
        "container started": events.get("start"),
        "progress stream: ready": ready,
        "/api answers through the proxy": answered,
    }
    for step, pattern in HUB_MARKS:
        moments[step] = first_mark(hub_lines, pattern.format(user=name), asked)
    for step, pattern in SERVER_MARKS:
        moments[step] = first_mark(server_lines, pattern.format(user=name), asked)
    user.stop_server()
    return {step: (m - asked if m is not None else None) for step, m in moments.items()}


def bare_round(stack, i):
    user = BareResearcher(stack, stack.user_name("tlb", i))
    asked = time.time()
    user.start()
    answered = time.time()
    name = user.container.name
    events = container_events(stack.client, name, asked, answered)
    lines = list(log_lines(stack.client, user.container.id, asked))
    moments = {
        "container created": events.get("create"),
        "container started": events.get("start"),
        "server: first line of its log": first_mark(lines, r".", asked),
        "server: extensions loaded": first_mark(lines, SERVER_MARKS[1][1], asked),
        "/api answers through the proxy": answered,  # directly: no proxy
    }
    user.stop()
    return {step: (m - asked if m is not None else None) for step, m in moments.items()}


ORDER = (
    "hub answered /hub/spawn",
    "container created",
    "container started",
    "server: first line of its log",
    "server: extensions loaded",
    "server: first request from the hub",
    "hub: server answering, route added",
    "hub: spawn done",
    "progress stream: ready",
    "/api answers through the proxy",
)


def median_of(rounds, step):
    values = [r[step] for r in rounds if r.get(step) is not None]
    return statistics.median(values) if values else None


def run(stack, rounds=5, echo=print):
    hub, bare = [], []
    for i in range(rounds):  # interleaved, as the spawn benchmark does
        hub.append(hub_round(stack, i))
        bare.append(bare_round(stack, i))
    rows = [[step, median_of(hub, step), median_of(bare, step)] for step in ORDER]
    echo(
        report.table(
            f"Spawn timeline: seconds after the request, median of {rounds} rounds",
            ["moment", "through the hub", "bare docker run"],
            rows,
        )
    )
    return {"rounds": {"hub": hub, "bare": bare}, "median_s": {r[0]: {"hub": r[1], "bare": r[2]} for r in rows}}
