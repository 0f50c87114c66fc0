"""3. Concurrency: N researchers arrive over a spread of seconds, all at once in the hub.

Each logs in, starts a server, runs a cell, and stays (an open JupyterLab)
until every researcher of the wave has had a first result, plus --idle
seconds; then stops. Measured: successes, failures by step, p50/p95/max of
each step, the hub's CPU and memory during the wave, and the host's
available memory at its lowest (the peak). The baseline wave does the same
with bare `docker run` containers of the same image: what the machine does
with no hub in the way.
"""

import threading
import time
from collections import Counter

from . import report
from .probes import Sampler
from .researcher import BARE_STEPS, STEPS, BareResearcher, Researcher

WAVE_TIMEOUT = 1800  # seconds a researcher waits for the others before idling anyway


def wave(users, spread, idle, sampler_names, client):
    """Run one wave; returns (users, sampler, seconds until everyone had a result or failed)."""
    n = len(users)
    arrived = threading.Condition()
    done = []
    started = time.monotonic()

    def one(i, user):
        time.sleep(spread * i / n)
        try:
            user.visit_until_result()
        except Exception as err:  # noqa: BLE001 - a bug in the client must not hang the whole wave
            user.failed = user.failed or ("client", repr(err)[:200])
        with arrived:
            done.append(time.monotonic() - started)
            arrived.notify_all()
            arrived.wait_for(lambda: len(done) == n, timeout=WAVE_TIMEOUT)
        if not user.failed:
            user.idle(idle)
        user.leave()

    threads = [threading.Thread(target=one, args=(i, u), daemon=True) for i, u in enumerate(users)]
    with Sampler(client, sampler_names) as sampler:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAVE_TIMEOUT + idle + 600)
    return sampler, max(done) if done else None


def step_rows(users, steps):
    failed = Counter(u.failed[0] for u in users if u.failed)
    rows = {}
    for step in steps:
        values = [u.times[step] for u in users if step in u.times]
        s = report.summary(values)
        rows[step] = {
            "ok": len(values),
            "failed": failed.get(step, 0),
            "p50": s["median"],
            "p95": s["p95"],
            "max": s["max"],
        }
    ttfr = report.summary([u.ttfr for u in users])
    rows["time to first result"] = {
        "ok": ttfr["n"],
        "failed": sum(failed.values()),
        "p50": ttfr["median"],
        "p95": ttfr["p95"],
        "max": ttfr["max"],
    }
    return rows


def run_one(stack, n, spread, idle, bare, echo):
    if bare:
        users = [BareResearcher(stack, stack.user_name(f"cb{n}x", i)) for i in range(n)]
        names, steps = [], BARE_STEPS
    else:
        users = [Researcher(stack.url, stack.user_name(f"c{n}x", i)) for i in range(n)]
        names, steps = [stack.hub], STEPS
    sampler, all_done = wave(users, spread, idle, names, stack.client)
    result = {
        "n": n,
        "spread_s": spread,
        "idle_s": idle,
        "succeeded": sum(1 for u in users if not u.failed),
        "failures": [{"user": u.name, "step": u.failed[0], "reason": u.failed[1]} for u in users if u.failed][:20],
        "steps": step_rows(users, steps),
        "throttled_429": sum(u.throttled for u in users),
        "all_results_after_s": all_done,
        "host_min_available_mib": sampler.host_min_available(),
    }
    if not bare:
        cpu, mem = sampler.cpu(stack.hub), sampler.memory(stack.hub)
        result["hub_cpu_percent"] = {"mean": sum(cpu) / len(cpu) if cpu else None, "max": max(cpu, default=None)}
        result["hub_mib"] = {"max": max(mem, default=None), "last": mem[-1] if mem else None}
    rows = [[step, r["ok"], r["failed"], r["p50"], r["p95"], r["max"]] for step, r in result["steps"].items()]
    label = "bare docker run" if bare else "through the hub"
    echo(
        report.table(
            f"Concurrency, {label}: N={n}, arrivals over {spread:.0f} s, idle {idle:.0f} s (s)",
            ["step", "ok", "failed", "p50", "p95", "max"],
            rows,
        )
    )
    line = (
        f"{result['succeeded']}/{n} succeeded; everyone had a result after {report.fmt(all_done, 1)} s; "
        f"host available memory at the peak {report.fmt(result['host_min_available_mib'], 0)} MiB"
    )
    if not bare:
        line += (
            f"; hub CPU mean {report.fmt(result['hub_cpu_percent']['mean'], 0)} % max "
            f"{report.fmt(result['hub_cpu_percent']['max'], 0)} % (of one core); hub memory max "
            f"{report.fmt(result['hub_mib']['max'], 0)} MiB; 429 answers honoured {result['throttled_429']}"
        )
    echo(line)
    for failure in result["failures"][:5]:
        echo(f"  failed: {failure['user']} at {failure['step']}: {failure['reason']}")
    return result


def run(stack, sizes=(10, 50, 100), spread=None, idle=30, echo=print):
    """spread: seconds over which a wave's researchers arrive (default: half a second each)."""
    waves = []
    for n in sizes:
        s = spread if spread is not None else 0.5 * n
        waves.append({"hub": run_one(stack, n, s, idle, False, echo), "bare": run_one(stack, n, s, idle, True, echo)})
        hub, bare = waves[-1]["hub"], waves[-1]["bare"]
        waves[-1]["ttfr_p95_ratio"] = report.ratio(
            hub["steps"]["time to first result"]["p95"], bare["steps"]["time to first result"]["p95"]
        )
    return {"waves": waves, "target": "100/100 succeed, p95 time to first result <= 30 s"}
