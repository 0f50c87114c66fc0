"""6. Datasets: spawn time with 0 and with 5 datasets mounted.

The same hub is started twice, with an access folder holding no datasets.toml
and with one declaring five open datasets (host folders, each bound to a
volume by `hubstack up`), and measured the same way as the spawn benchmark:
start request -> the server's /api answers through the hub. In dev mode no
approval source is asked, so this is the cost of deciding and mounting; the
approval calls per dataset (registry, list, passport) are the `latency_ms` of
the `spawn-datasets` audit lines, printed by tests/integration/test_datasets.py.
"""

import tempfile
from pathlib import Path

from hubstack.common.contract import APPROVAL_LIST, DATASETS_FILE

from . import report
from .spawn import rounds_of

COUNTS = (0, 5)


def access_folder(root, count):
    folder = Path(root) / f"access-{count}"
    folder.mkdir()
    (folder / APPROVAL_LIST).write_text("email,approved_until,note,dataset\n")
    tables = []
    for i in range(count):
        data = Path(root) / f"data-{i}"
        data.mkdir()
        data.chmod(0o755)
        (data / "table.tsv").write_text("id\tvalue\n1\t2\n")
        tables.append(f'[datasets.bench{i}]\nfolder = "{data}"\ngrant = "open"\n')
    if tables:
        (folder / DATASETS_FILE).write_text("\n".join(tables))
    return folder


def run(stack, rounds=10, echo=print):
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="hubstack-bench-datasets-") as root, stack.settings_changed() as environ:
        for count in COUNTS:
            environ["HUBSTACK_ACCESS_DIR"] = str(access_folder(root, count))
            stack.up()  # the hub is made again with the other access folder
            seconds[count] = rounds_of(stack, f"ds{count}x", rounds, echo, f"{count} datasets")
    for volume in stack.client.volumes.list(filters=stack.names.label_filter("dataset")):
        volume.remove(force=True)
    result = {"rounds": rounds, **{f"datasets_{n}_s": report.summary(v) for n, v in seconds.items()}}
    result["raw"] = {str(n): v for n, v in seconds.items()}
    result["added_median_s"] = result["datasets_5_s"]["median"] - result["datasets_0_s"]["median"]
    echo(
        report.table(
            "Spawn with datasets: start request -> server's /api answers (s)",
            report.SUMMARY_COLUMNS,
            report.summary_rows({f"{n} datasets": result[f"datasets_{n}_s"] for n in COUNTS}),
        )
    )
    echo(f"5 datasets add {result['added_median_s'] * 1000:.0f} ms to the median spawn")
    return result
