"""2. Time to first result: log-in form -> server ready -> kernel -> `1+1` returns.

The baseline is the same image by `docker run`, used directly: start ->
/api answers -> kernel -> `1+1`. One researcher at a time, rounds alternate.
"""

from . import report
from .researcher import BARE_STEPS, STEPS, BareResearcher, Researcher

HUB_STEPS = [s for s in STEPS if s not in ("idle", "stop")]
BASE_STEPS = [s for s in BARE_STEPS if s not in ("idle", "stop")]


def visit(user):
    ok = user.visit_until_result()
    user.leave()
    if not ok:
        raise SystemExit(f"bench: {user.name} failed at {user.failed[0]}: {user.failed[1]}")
    return user


def run(stack, rounds=10, echo=print):
    hub, bare = [], []
    for i in range(rounds):
        hub.append(visit(Researcher(stack.url, stack.user_name("ttfr", i))))
        bare.append(visit(BareResearcher(stack, stack.user_name("ttfrbare", i))))
        echo(f"  round {i + 1}/{rounds}: hub {hub[-1].ttfr:.2f} s, bare {bare[-1].ttfr:.2f} s")
    result = {
        "rounds": rounds,
        "hub_steps_s": {s: report.summary([u.times[s] for u in hub]) for s in HUB_STEPS},
        "bare_steps_s": {s: report.summary([u.times[s] for u in bare]) for s in BASE_STEPS},
        "hub_ttfr_s": report.summary([u.ttfr for u in hub]),
        "bare_ttfr_s": report.summary([u.ttfr for u in bare]),
    }
    result["ratio_median"] = report.ratio(result["hub_ttfr_s"]["median"], result["bare_ttfr_s"]["median"])
    rows = {f"hub: {s}": v for s, v in result["hub_steps_s"].items()}
    rows["hub: time to first result"] = result["hub_ttfr_s"]
    rows.update({f"bare: {s}": v for s, v in result["bare_steps_s"].items()})
    rows["bare: time to first result"] = result["bare_ttfr_s"]
    echo(
        report.table(
            "Time to first result, one researcher at a time (s)", report.SUMMARY_COLUMNS, report.summary_rows(rows)
        )
    )
    echo(f"ratio hub/bare (median): {report.fmt(result['ratio_median'])}")
    return result
