"""3. Concurrency: N researchers arrive over a spread of seconds, all at once in the hub.

Each logs in, starts a server, runs a cell, and stays (an open JupyterLab)
until every researcher of the wave has had a first result, plus --idle
seconds; then stops. Measured: successes, failures by step, p50/p95/max of
each step, the hub's CPU and memory during the wave, and the host's
available memory at its lowest (the peak), and the drain time: until every
researcher of the wave had a first result.

The baseline is the engine's floor: the same wave of bare `docker run`
containers (same image, mounts and arrivals) with at most K of them starting
at once, as the hub's concurrent_spawn_limit does, for the K that drains
fastest on this machine (tried at one wave size: 1, 2, 4, 6, 8).
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


class LimitedBareResearcher(BareResearcher):
    """A bare start that waits for one of the wave's K slots, as a spawn waits for the hub's limit."""

    def __init__(self, stack, name, slots):
        super().__init__(stack, name)
        self.slots = slots

    def start(self):
        with self.slots:
            super().start()


def floor_drain(stack, n, spread, k, echo):
    """The drain time of n bare starts with k at once (a quiet wave: no idle time)."""
    slots = threading.BoundedSemaphore(k)
    users = [LimitedBareResearcher(stack, stack.user_name(f"f{n}k{k}x", i), slots) for i in range(n)]
    _, drained = wave(users, spread, 0, [], stack.client)
    failed = sum(1 for u in users if u.failed)
    echo(f"  engine floor N={n}, {k} at once: drained after {report.fmt(drained, 1)} s, {failed} failed")
    return drained if not failed else None


def best_concurrency(stack, n, spread, levels, echo):
    """({k: drain seconds}, the k that drained fastest) for waves of n bare starts."""
    drains = {k: floor_drain(stack, n, spread, k, echo) for k in levels}
    done = {k: d for k, d in drains.items() if d is not None}
    return drains, (min(done, key=done.get) if done else None)


def run_one(stack, n, spread, idle, bare, echo, k=None):
    if bare:
        slots = threading.BoundedSemaphore(k)
        users = [LimitedBareResearcher(stack, stack.user_name(f"cb{n}x", i), slots) for i in range(n)]
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
    label = f"bare docker run, {k} at once (the engine's floor)" if bare else "through the hub"
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


def run(stack, sizes=(10, 50, 100), spread=None, idle=30, echo=print, levels=(1, 2, 4, 6, 8)):
    """spread: seconds over which a wave's researchers arrive (default: half a second each).

    The engine's best concurrency is searched once, at the first size of 50 or more (else the
    largest), then each size runs its floor wave at that concurrency and its hub wave."""
    at = next((n for n in sizes if n >= 50), max(sizes))
    spread_of = lambda n: spread if spread is not None else 0.5 * n  # noqa: E731
    echo(f"Engine floor: {at} bare starts, at most K at once, K = {', '.join(map(str, levels))}")
    drains, best = best_concurrency(stack, at, spread_of(at), levels, echo)
    best = best or max(levels)
    echo(f"  fastest: {best} at once; the hub starts {stack.spawn_concurrency()} at once")
    waves = []
    for n in sizes:
        hub = run_one(stack, n, spread_of(n), idle, False, echo)
        bare = run_one(stack, n, spread_of(n), idle, True, echo, k=best)
        waves.append({"hub": hub, "bare": bare, "bare_concurrency": best})
        waves[-1]["ttfr_p95_ratio"] = report.ratio(
            hub["steps"]["time to first result"]["p95"], bare["steps"]["time to first result"]["p95"]
        )
        waves[-1]["drain_ratio"] = report.ratio(hub["all_results_after_s"], bare["all_results_after_s"])
        echo(
            f"N={n}: the hub drained in {report.fmt(hub['all_results_after_s'], 1)} s, the engine's floor in "
            f"{report.fmt(bare['all_results_after_s'], 1)} s: {report.fmt(waves[-1]['drain_ratio'], 2)}x"
        )
    return {
        "floor_search": {"n": at, "drain_s": {str(k): d for k, d in drains.items()}, "best": best},
        "hub_spawn_concurrency": stack.spawn_concurrency(),
        "waves": waves,
        "target": "100/100 succeed; the hub's drain within 1.15x of the engine's floor at N = 50 and 100",
    }
