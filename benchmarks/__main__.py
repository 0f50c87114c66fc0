"""hubstack benchmarks: `scripts/bench [NAME ...] [options]` (see README.md, "Benchmarks").

NAME: spawn, timeline, first-result, concurrency, footprint, datasets, egress, backup, quota, database, build
(default: all, build first; build, backup, quota and database only on the benchmarks' own instance). Each prints its tables, writes benchmarks/results/<name>.json, and
appends what it printed to benchmarks/results/report.txt. Benchmarks measure;
they assert nothing about the numbers.
"""

import argparse
import sys
import time
from pathlib import Path

from . import (
    backup,
    build,
    concurrency,
    database,
    datasets,
    egress,
    first_result,
    footprint,
    quota,
    report,
    spawn,
    timeline,
)
from .stack import BENCH_NAME, BENCH_PORT, BenchInstance

ORDER = (
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
)
OWN_INSTANCE_ONLY = ("build", "backup", "quota", "database")  # they remove images or volumes: never with --running


def sizes(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas, e.g. 10,50,100") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be 1 or more")
    return values


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(ORDER))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run (2 rounds, 3 researchers, 2 servers); never the build benchmark",
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of spawn and first-result (default 10)")
    parser.add_argument("--users", type=sizes, default=(10, 50, 100), help="concurrency wave sizes (default 10,50,100)")
    parser.add_argument(
        "--spread",
        type=float,
        default=None,
        help="seconds over which a wave's researchers arrive (default: 0.5 s per researcher)",
    )
    parser.add_argument(
        "--idle", type=float, default=30, help="seconds everyone stays after the last first result (default 30)"
    )
    parser.add_argument(
        "--levels",
        type=sizes,
        default=(1, 2, 4, 6, 8),
        help="concurrency: bare starts at once tried for the engine's floor (default 1,2,4,6,8)",
    )
    parser.add_argument("--servers", type=sizes, default=(50, 100), help="footprint: hub memory at these server counts")
    parser.add_argument(
        "--running",
        metavar="NAME:PORT",
        help="measure this dev-mode instance, already up, instead of a fresh hubbench (no build benchmark)",
    )
    parser.add_argument("--results", type=Path, default=report.RESULTS, help="folder for the JSON files and report.txt")
    parser.add_argument("--warm", action="store_true", help="build benchmark: keep the images (no cold build)")
    parser.add_argument("--backup-users", type=int, default=10, help="backup: researchers (default 10)")
    parser.add_argument("--backup-mb", type=float, default=100, help="backup: MB each writes (default 100)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in ORDER]
    if unknown:
        parser.error(f"no benchmark called {', '.join(unknown)}: choose from {', '.join(ORDER)}")
    if args.quick:
        args.rounds, args.users, args.spread, args.idle, args.servers, args.levels = 2, (3,), 1.0, 2.0, (2,), (1, 3)
    names = args.names or [n for n in ORDER if not (n in OWN_INSTANCE_ONLY and (args.quick or args.running))]
    if args.running and set(names) & set(OWN_INSTANCE_ONLY):
        parser.error(
            "the build, backup, quota and database benchmarks remove images or volumes: they run only on the "
            "benchmarks' own "
            "instance, not with --running"
        )
    return args, names


def main(argv=None):
    args, names = parse(sys.argv[1:] if argv is None else argv)
    args.results.mkdir(parents=True, exist_ok=True)
    log = open(args.results / "report.txt", "a")

    def echo(text=""):
        print(text, flush=True)
        log.write(text + "\n")
        log.flush()

    machine = report.machine()
    echo(
        f"\n=== hubstack benchmarks {time.strftime('%Y-%m-%d %H:%M')} at {machine['commit']}"
        f"{' (uncommitted changes)' if machine['dirty'] else ''}: {machine['cpus']} cores, {machine['memory_gib']} GiB, "
        f"Docker {machine['docker']} {machine['storage_driver']}"
    )
    if args.running:
        name, _, port = args.running.partition(":")
        stack = BenchInstance(name, int(port or BENCH_PORT))
        if not stack.healthy():
            raise SystemExit(f"bench: {name} does not answer at {stack.url}: start it, or leave out --running")
    if "build" in names:
        BenchInstance().down()  # the cold build removes the images the benchmarks' hub runs on
        echo("\n--- build")
        report.write("build", build.run(echo=echo, cold=not args.warm), args.results)
    if not args.running:
        stack = BenchInstance()
        echo(f"\n(starting a fresh {BENCH_NAME} on {stack.url})")
        stack.fresh()
    try:
        for name, func in (
            ("spawn", lambda: spawn.run(stack, args.rounds, echo)),
            ("timeline", lambda: timeline.run(stack, min(args.rounds, 5), echo)),
            ("first-result", lambda: first_result.run(stack, args.rounds, echo)),
            (
                "footprint",
                lambda: footprint.run(stack, args.servers, echo, settle=2 if args.quick else footprint.SETTLE),
            ),
            ("concurrency", lambda: concurrency.run(stack, args.users, args.spread, args.idle, echo, args.levels)),
            ("datasets", lambda: datasets.run(stack, args.rounds, echo)),
            (
                "egress",
                lambda: egress.run(
                    stack,
                    args.rounds,
                    max(args.servers),
                    echo,
                    settle=2 if args.quick else 10,
                    download_mib=2 if args.quick else 100,
                    downloads=args.rounds if args.quick else 5,
                ),
            ),
            ("backup", lambda: backup.run(stack, args.backup_users, args.backup_mb, echo)),
            ("quota", lambda: quota.run(stack, args.rounds, echo)),
            ("database", lambda: database.run(stack, args.rounds, echo)),
        ):
            if name in names:
                echo(f"\n--- {name}")
                path = report.write(name.replace("-", "_"), func(), args.results)
                echo(f"(written to {path})")
    finally:
        stack.cleanup()
        if not args.running:
            stack.down()  # its volumes stay until the next fresh start
    return 0


if __name__ == "__main__":
    sys.exit(main())
