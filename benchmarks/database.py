"""10. Private database: spawn time of a profile with the MariaDB sidecar against the same profile without,
and the sidecar's memory when idle.

The hub is started with an access folder holding two profiles that differ
only in `database = true`. Each round is one new researcher per profile,
interleaved, and the database researcher starts twice: the first start makes
the database volume and initialises MariaDB's data folder, the next finds it.
The clock runs as in the spawn benchmark: the spawn form's request -> the
server's /api answers through the hub (the hub returns only once the database
is ready too). Then a few database servers stay idle and each sidecar's memory
is read from its cgroup (what `docker stats` shows). Only on the benchmarks'
own instance: its database volumes go with its users.
"""

import tempfile
import time
from pathlib import Path

import requests

from hubstack.common.contract import PROFILES_FILE, Role

from . import report
from .probes import working_set
from .researcher import Researcher, wait_answer

PROFILES = """
[profiles.plain]
description = "Without a database"
default = true

[profiles.sql]
description = "With a private MariaDB"
database = true
"""
IDLE_SERVERS = 3
SETTLE = 10  # s after the last start before memory is read


def form_round(stack, name, profile, stop=True):
    user = Researcher(stack.url, name)
    user.login()
    started = time.monotonic()
    response = user.spawn_form({"profile": profile})
    if response.status_code >= 400:
        raise SystemExit(f"bench: the spawn form answered {response.status_code}")
    wait_answer(requests.Session(), user.url(f"/user/{name}/api"))
    elapsed = time.monotonic() - started
    if stop:
        user.stop_server()
    return elapsed, user


def sidecar_memory_mib(stack):
    found = []
    for container in stack.client.containers.list(filters=stack.names.label_filter(Role.DATABASE_SIDECAR)):
        found.append(working_set(container.stats(stream=False)["memory_stats"]))
    return found


def run(stack, rounds=10, echo=print):
    seconds = {"plain": [], "sql_first": [], "sql_next": []}
    with tempfile.TemporaryDirectory(prefix="hubstack-bench-db-") as root, stack.settings_changed() as environ:
        folder = Path(root) / "access"
        folder.mkdir()
        (folder / PROFILES_FILE).write_text(PROFILES)
        environ["HUBSTACK_ACCESS_DIR"] = str(folder)
        stack.up()
        form_round(stack, stack.user_name("dbwarm", 0), "sql")
        for i in range(rounds):
            seconds["plain"].append(form_round(stack, stack.user_name("dbplain", i), "plain")[0])
            name = stack.user_name("dbsql", i)
            seconds["sql_first"].append(form_round(stack, name, "sql")[0])
            seconds["sql_next"].append(form_round(stack, name, "sql")[0])
            echo(
                f"  round {i + 1}/{rounds}: without {seconds['plain'][-1]:.2f} s, with the database "
                f"{seconds['sql_first'][-1]:.2f} s (first), {seconds['sql_next'][-1]:.2f} s (next)"
            )
        idle = [form_round(stack, stack.user_name("dbidle", i), "sql", stop=False)[1] for i in range(IDLE_SERVERS)]
        time.sleep(SETTLE)
        memory = sidecar_memory_mib(stack)
        for user in idle:
            user.stop_server()
    result = {"rounds": rounds, "raw": seconds, "sidecar_idle_mib": report.summary(memory)}
    for key, values in seconds.items():
        result[f"{key}_s"] = report.summary(values)
    result["added_first_median_s"] = result["sql_first_s"]["median"] - result["plain_s"]["median"]
    result["added_next_median_s"] = result["sql_next_s"]["median"] - result["plain_s"]["median"]
    echo(
        report.table(
            "Spawn with the database sidecar: the form's request -> server's /api answers (s)",
            report.SUMMARY_COLUMNS,
            report.summary_rows(
                {
                    "without a database": result["plain_s"],
                    "with, first start": result["sql_first_s"],
                    "with, next start": result["sql_next_s"],
                }
            ),
        )
    )
    echo(
        f"the database adds {result['added_first_median_s'] * 1000:.0f} ms to a first start and "
        f"{result['added_next_median_s'] * 1000:.0f} ms to a next one (median); an idle sidecar uses "
        f"{result['sidecar_idle_mib']['median']:.1f} MiB (median of {len(memory)})"
    )
    return result
