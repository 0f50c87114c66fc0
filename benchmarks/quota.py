"""9. Home quota: spawn time with HUBSTACK_HOME_QUOTA against the same hub without it.

Each round is a new researcher started twice: the first start makes the home
(with the quota: an image file reserved in full, mkfs, attached to a loop
device by the hub's helper), the next start finds it (attached again). The
clock runs as in the spawn benchmark: start request -> the server's /api
answers through the hub. Only on the benchmarks' own instance: afterwards
its home images are removed with their volume.
"""

import time

from . import report
from .spawn import hub_round

SETTINGS = (("no quota", ""), ("quota 1G", "1G"))


def remove_home_disks(stack, timeout=60):
    """The home images made here (every one of the benchmarks' instance): once no home is attached."""
    from hubstack.common.contract import Role

    deadline = time.monotonic() + timeout
    while stack.client.volumes.list(filters=stack.names.label_filter(Role.HOME_DISK)):
        if time.monotonic() > deadline:
            raise SystemExit("bench: homes are still attached a minute after their servers stopped")
        time.sleep(1)
    for volume in stack.client.volumes.list(filters=stack.names.label_filter(Role.HOME_DISKS)):
        volume.remove(force=True)


def run(stack, rounds=10, echo=print):
    seconds = {label: {"first": [], "next": []} for label, _ in SETTINGS}
    with stack.settings_changed() as environ:
        for label, quota in SETTINGS:
            environ["HUBSTACK_HOME_QUOTA"] = quota
            stack.up()
            hub_round(stack, stack.user_name(f"q{len(quota)}warm", 0))
            for i in range(rounds):
                name = stack.user_name(f"q{len(quota)}x", i)
                seconds[label]["first"].append(hub_round(stack, name))
                seconds[label]["next"].append(hub_round(stack, name))
                echo(
                    f"  {label}, round {i + 1}/{rounds}: first {seconds[label]['first'][-1]:.2f} s, "
                    f"next {seconds[label]['next'][-1]:.2f} s"
                )
    remove_home_disks(stack)
    result = {"rounds": rounds, "raw": seconds}
    for label, _ in SETTINGS:
        key = label.replace(" ", "_")
        result[f"{key}_first_s"] = report.summary(seconds[label]["first"])
        result[f"{key}_next_s"] = report.summary(seconds[label]["next"])
    for start in ("first", "next"):
        result[f"added_{start}_median_s"] = (
            result[f"quota_1G_{start}_s"]["median"] - result[f"no_quota_{start}_s"]["median"]
        )
    echo(
        report.table(
            "Spawn with a home quota: start request -> server's /api answers (s)",
            report.SUMMARY_COLUMNS,
            report.summary_rows(
                {
                    f"{label}, {start} start": result[f"{label.replace(' ', '_')}_{start}_s"]
                    for label, _ in SETTINGS
                    for start in ("first", "next")
                }
            ),
        )
    )
    echo(
        f"the quota adds {result['added_first_median_s'] * 1000:.0f} ms to a first start (a new home) and "
        f"{result['added_next_median_s'] * 1000:.0f} ms to a next one (median)"
    )
    return result
