"""1. Spawn overhead: through the hub against a bare `docker run` of the same image.

Hub: a logged-in researcher asks /hub/spawn; the clock stops when the
server's /api answers through the hub's proxy. Bare: `docker run` of the
notebook image with the same mounts and limits; the clock stops when its
/api answers. Rounds alternate so both see the same machine; each round is a
new user with a new home volume on both sides (a first login).
"""

import time

import requests

from . import report
from .researcher import BareResearcher, Researcher, wait_answer


def hub_round(stack, name):
    user = Researcher(stack.url, name)
    user.login()
    started = time.monotonic()
    response = user.session.get(user.url("/hub/spawn"), timeout=120, allow_redirects=False)
    if response.status_code not in (200, 302, 303):
        raise SystemExit(f"bench: /hub/spawn answered {response.status_code}")
    wait_answer(requests.Session(), user.url(f"/user/{name}/api"))
    elapsed = time.monotonic() - started
    user.stop_server()
    return elapsed


def rounds_of(stack, kind, rounds, echo, label):
    """A warm-up start, then `rounds` timed ones, each a new user (names: <run id><kind><i>)."""
    hub_round(stack, stack.user_name(f"{kind}warm", 0))
    seconds = []
    for i in range(rounds):
        seconds.append(hub_round(stack, stack.user_name(kind, i)))
        echo(f"  {label}, round {i + 1}/{rounds}: {seconds[-1]:.2f} s")
    return seconds


def bare_round(stack, name):
    user = BareResearcher(stack, name)
    started = time.monotonic()
    user.start()
    elapsed = time.monotonic() - started
    user.leave()
    return elapsed


def run(stack, rounds=10, echo=print):
    hub_round(stack, stack.user_name("spawnwarm", 0))  # the first start after `up` reads the image from disk
    bare_round(stack, stack.user_name("barewarm", 0))
    hub, bare = [], []
    for i in range(rounds):
        hub.append(hub_round(stack, stack.user_name("spawn", i)))
        bare.append(bare_round(stack, stack.user_name("bare", i)))
        echo(f"  round {i + 1}/{rounds}: hub {hub[-1]:.2f} s, bare {bare[-1]:.2f} s")
    result = {
        "rounds": rounds,
        "hub_s": report.summary(hub),
        "bare_s": report.summary(bare),
        "hub_raw": hub,
        "bare_raw": bare,
    }
    result["ratio_median"] = report.ratio(result["hub_s"]["median"], result["bare_s"]["median"])
    result["ratio_p95"] = report.ratio(result["hub_s"]["p95"], result["bare_s"]["p95"])
    result["target_ratio"] = 1.2
    echo(
        report.table(
            "Spawn: start request -> server's /api answers (s)",
            report.SUMMARY_COLUMNS,
            report.summary_rows({"through the hub": result["hub_s"], "bare docker run": result["bare_s"]}),
        )
    )
    echo(
        f"ratio hub/bare: median {report.fmt(result['ratio_median'])}, p95 {report.fmt(result['ratio_p95'])} "
        f"(target <= {result['target_ratio']})"
    )
    return result
