"""The benchmark suite's short smoke run against the test hub, so it does not rot.

It checks that every benchmark runs the real protocol end to end and writes
its result, and that it leaves nothing of its own behind; the numbers are
not judged here (benchmarks/ measures, it does not test).
"""

import json
import subprocess
import sys

from helpers import NAME, PORT, REPO, wait_for


def test_quick_benchmarks_run_and_clean_up_after_themselves(hub, docker_client, tmp_path):
    def containers():
        return {c.name for c in docker_client.containers.list(all=True, filters={"label": f"hubstack.instance={NAME}"})}

    volumes_before, containers_before = {v.name for v in docker_client.volumes.list()}, containers()
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--running", f"{NAME}:{PORT}", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(result.stdout)

    spawn = json.loads((tmp_path / "spawn.json").read_text())
    assert spawn["hub_s"]["n"] == 2 and spawn["bare_s"]["n"] == 2
    assert spawn["ratio_median"] == spawn["hub_s"]["median"] / spawn["bare_s"]["median"]
    assert spawn["machine"]["cpus"] >= 1 and spawn["machine"]["commit"]

    first = json.loads((tmp_path / "first_result.json").read_text())
    assert set(first["hub_steps_s"]) == {"login", "spawn", "open", "kernel", "first_result"}
    assert all(s["n"] == 2 and s["min"] > 0 for s in first["hub_steps_s"].values())
    assert first["hub_ttfr_s"]["min"] > first["hub_steps_s"]["spawn"]["min"]

    wave = json.loads((tmp_path / "concurrency.json").read_text())["waves"][0]
    assert wave["hub"]["succeeded"] == 3 and wave["bare"]["succeeded"] == 3, wave
    assert wave["hub"]["steps"]["stop"]["ok"] == 3 and wave["hub"]["steps"]["idle"]["ok"] == 3
    assert wave["hub"]["hub_mib"]["max"] > 20 and wave["hub"]["host_min_available_mib"] > 0

    footprint = json.loads((tmp_path / "footprint.json").read_text())
    assert [r["servers"] for r in footprint["hub"]] == [0, 2]
    assert 20 < footprint["user_server_idle_mib"] < footprint["user_server_with_kernel_mib"]
    assert footprint["shared_environment_mib"] > 100 and footprint["disk_per_user"]["home_volume_mib"] > 0
    assert "Spawn: start request" in (tmp_path / "report.txt").read_text()

    datasets = json.loads((tmp_path / "datasets.json").read_text())
    assert datasets["datasets_0_s"]["n"] == 2 and datasets["datasets_5_s"]["n"] == 2
    assert datasets["added_median_s"] == datasets["datasets_5_s"]["median"] - datasets["datasets_0_s"]["median"]

    egress = json.loads((tmp_path / "egress.json").read_text())
    assert egress["open"]["spawn_s"]["n"] == 2 and egress["closed"]["spawn_s"]["n"] == 2
    assert egress["open"]["hub_mib"] > 20 and egress["closed"]["hub_mib"] > 20
    for scheme in ("http", "https"):  # the same file, fetched directly and through the proxy
        download = egress["download"][scheme]
        assert download["direct_s"]["n"] == 2 and download["proxied_s"]["n"] == 2
        assert download["ratio_median"] == download["proxied_s"]["median"] / download["direct_s"]["median"]

    # Nothing of the run is left: no server, no bare container, no volume it made. The hub's own
    # short-lived containers (a home's detach after the last stop, the periodic du of homes) may
    # still be finishing, so they get a minute to go; one that stays is a leak all the same.
    wait_for(lambda: containers() - containers_before == set(), 60, "the run's containers to go")
    assert {v.name for v in docker_client.volumes.list()} - volumes_before == set()
