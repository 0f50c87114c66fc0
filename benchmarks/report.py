"""Numbers into tables and JSON: the part of the benchmarks with no Docker in it."""

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values, q):
    """The q-th percentile (0-100) by the nearest-rank method: always one of the values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values):
    """count, median, p95, min, max of a list of numbers (None when empty)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0, "median": None, "p95": None, "min": None, "max": None}
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"n": len(ordered), "median": median, "p95": percentile(ordered, 95), "min": ordered[0], "max": ordered[-1]}


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(title, columns, rows, digits=2):
    """A plain-text table: columns are headings, rows are lists of values."""
    cells = [[fmt(v, digits) for v in row] for row in rows]
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) if cells else len(str(c)) for i, c in enumerate(columns)]
    lines = [
        title,
        "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=False))
        ),
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append(
            "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=False)))
        )
    return "\n".join(lines)


def summary_rows(named):
    """Rows of label, n, median, p95, min, max for {label: summary}."""
    return [[label, s["n"], s["median"], s["p95"], s["min"], s["max"]] for label, s in named.items()]


SUMMARY_COLUMNS = ["", "n", "median", "p95", "min", "max"]


def machine():
    """What the numbers were measured on."""

    def out(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
        except OSError:
            return ""

    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return {
        "commit": out("git", "-C", str(RESULTS.parent.parent), "rev-parse", "--short", "HEAD"),
        "dirty": bool(out("git", "-C", str(RESULTS.parent.parent), "status", "--porcelain", "--untracked-files=no")),
        "cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1),
        "kernel": platform.release(),
        "docker": out("docker", "version", "--format", "{{.Server.Version}} {{.Server.Os}}"),
        "storage_driver": out("docker", "info", "--format", "{{.Driver}}"),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write(name, result, folder=RESULTS):
    """benchmarks/results/<name>.json, with the machine and commit it was measured on."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2) + "\n")
    return path
