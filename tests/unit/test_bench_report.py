"""The benchmarks' arithmetic and argument checks (no Docker)."""

import json

import pytest

from benchmarks import report
from benchmarks.__main__ import parse
from benchmarks.probes import working_set


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))  # 1..20
    assert report.percentile(values, 95) == 19
    assert report.percentile(values, 50) == 10
    assert report.percentile([7.5], 95) == 7.5
    assert report.percentile([], 95) is None


def test_summary_of_unsorted_values_with_gaps():
    s = report.summary([4.0, None, 1.0, 3.0, 2.0])
    assert s == {"n": 4, "median": 2.5, "p95": 4.0, "min": 1.0, "max": 4.0}
    assert report.summary([None])["median"] is None


def test_ratio_and_table():
    assert report.ratio(3.0, 2.0) == 1.5
    assert report.ratio(None, 2.0) is None and report.ratio(1.0, 0) is None
    text = report.table("T", ["", "a", "b"], [["row one", 1.234, None], ["x", 10.0, 2]])
    lines = text.splitlines()
    assert lines[0] == "T"
    assert lines[3].split() == ["row", "one", "1.23", "-"]
    assert lines[4].split() == ["x", "10.00", "2"]
    assert len({len(line) for line in lines[1:]}) == 1  # aligned columns


def test_write_records_the_machine(tmp_path):
    path = report.write("demo", {"x": 1}, folder=tmp_path)
    data = json.loads(path.read_text())
    assert data["benchmark"] == "demo" and data["x"] == 1
    assert data["machine"]["cpus"] >= 1 and data["machine"]["memory_gib"] > 0


def test_working_set_leaves_out_reclaimable_cache():
    v1 = {"usage": 300 * 2**20, "stats": {"total_inactive_file": 100 * 2**20, "cache": 150 * 2**20}}
    v2 = {"usage": 300 * 2**20, "stats": {"inactive_file": 50 * 2**20}}
    assert working_set(v1) == 200
    assert working_set(v2) == 250


def test_arguments():
    args, names = parse([])
    assert (
        names
        == [
            "build",
            "spawn",
            "timeline",
            "first-result",
            "footprint",
            "concurrency",
            "datasets",
            "egress",
            "backup",
            "quota",
            "database",
        ]
        and args.rounds == 10
        and (args.backup_users, args.backup_mb) == (10, 100)
    )
    args, names = parse(["--quick"])
    assert "build" not in names and "backup" not in names and args.users == (3,) and args.rounds == 2
    assert args.levels == (1, 3)
    args, names = parse(["--running", "hubci:8101", "spawn"])
    assert names == ["spawn"]
    for bad in (
        ["nonsense"],
        ["--users", "10,x"],
        ["--users", "0"],
        ["--running", "hubci:8101", "build"],
        ["--running", "hubci:8101", "backup"],
    ):
        with pytest.raises(SystemExit) as exc:
            parse(bad)
        assert exc.value.code == 2
