"""The command line: ``python -m ganlib.benchmark {run,report,plan,time} ...``.

Examples::

    python -m ganlib.benchmark plan --profile cpu
    python -m ganlib.benchmark run --profile cpu --shard 1/2 &   # one process per core
    python -m ganlib.benchmark run --profile cpu --shard 2/2 &
    python -m ganlib.benchmark run --suite kdd99 --detector alad --framework other
    python -m ganlib.benchmark report --profile cpu

The thread variables are set from the profile *before* anything imports
PyTorch or TensorFlow, which read them once at import.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from .profiles import PROFILES, get_profile
from .runner import DEFAULT_SEEDS, FRAMEWORK_OPTIONS, jobs, limit_threads, parse_shard
from .store import StoreError
from .suites import DETECTORS, RULES, SUITES, check_name


def _name(valid: dict | tuple, what: str):
    """An argparse type that checks a name and reports every valid one."""

    def check(value: str) -> str:
        try:
            return check_name(value, valid, what)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    check.__name__ = what
    return check


def _shard(value: str) -> str:
    try:
        parse_shard(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


PROFILE_HELP = f"{', '.join(PROFILES)} (default: cpu)"


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m ganlib.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main.add_subparsers(dest="command", required=True)

    def profile_and_store(command):
        command.add_argument(
            "--profile",
            type=_name(PROFILES, "profile"),
            default="cpu",
            help=PROFILE_HELP,
        )
        command.add_argument(
            "--store", help="results directory (default: results/benchmark)"
        )

    def selection(command):
        profile_and_store(command)
        command.add_argument(
            "--suite",
            nargs="+",
            type=_name(SUITES, "suite"),
            help=f"default: all of {', '.join(SUITES)}",
        )
        command.add_argument(
            "--detector",
            nargs="+",
            type=_name(DETECTORS, "detector"),
            help=f"default: all of {', '.join(DETECTORS)}",
        )
        command.add_argument(
            "--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS)
        )
        command.add_argument(
            "--classes",
            nargs="+",
            type=int,
            help="digits of the image suites (default: all ten)",
        )
        command.add_argument(
            "--framework",
            type=_name(FRAMEWORK_OPTIONS, "framework option"),
            default="plan",
            help="plan (the benchmark's design), default, other or both",
        )

    run = commands.add_parser(
        "run", help="train and score, appending records to the store"
    )
    selection(run)
    run.add_argument(
        "--shard", type=_shard, default="1/1", help="i/n: every n-th job from the i-th"
    )
    run.add_argument(
        "--note", help="free text stored in every record, e.g. 'contended CPU'"
    )
    run.add_argument(
        "--verbose", action="store_true", help="the detectors' own epoch bars"
    )

    report = commands.add_parser("report", help="print the tables from the store")
    profile_and_store(report)
    report.add_argument(
        "--rule", type=_name(RULES, "rule"), help="one selection rule only"
    )

    plan = commands.add_parser("plan", help="list the jobs and estimate the wall time")
    selection(plan)
    plan.add_argument("--processes", type=_positive, default=2)
    plan.add_argument(
        "--jobs", action="store_true", help="print every job, one per line"
    )

    commands.add_parser(
        "speed",
        add_help=False,
        help="samples/s of every model in both frameworks "
        "(see python -m ganlib.speed -h)",
    )
    timing = commands.add_parser("time", help="measure per-detector timings for plan")
    profile_and_store(timing)
    timing.add_argument("--detector", nargs="+", type=_name(DETECTORS, "detector"))
    timing.add_argument("--epochs", type=_positive, default=3)
    timing.add_argument(
        "--note", default="", help="say 'contended' if the CPU was shared"
    )
    return main


def main(argv=None) -> int:
    """Run one command; bad input exits with status 2 and a one-line message."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["speed"]:  # the speed table has its own options: ganlib.speed
        from .. import speed

        speed.main(argv[1:])
        return 0
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.command in ("run", "plan"):
        try:  # seeds, classes and the selection as a whole, before any training
            jobs(**_selection(args))
        except ValueError as error:
            command_line.error(str(error))
    if args.command in ("run", "time"):
        # before any framework is imported: they read the variables once
        limit_threads(get_profile(args.profile).threads)
    options = ("display.width", 160, "display.max_columns", 30, "display.max_rows", 500)
    try:
        with pd.option_context(*options):
            return COMMANDS[args.command](args)
    except StoreError as error:  # a corrupt store line: say where, change nothing
        print(f"error: {error}", file=sys.stderr)
        return 1


def _selection(args) -> dict:
    return {
        "suites": args.suite,
        "detectors": args.detector,
        "seeds": args.seeds,
        "classes": args.classes,
        "framework": args.framework,
    }


def _run(args) -> int:
    from .runner import run

    written = run(
        profile=args.profile,
        shard=args.shard,
        store=args.store,
        verbose=args.verbose,
        note=args.note,
        **_selection(args),
    )
    print(f"wrote {len(written)} records")
    return 0


def _report(args) -> int:
    from .tables import mean_std, report

    tables = report(args.store, args.profile, args.rule)
    if tables["summary"].empty:
        print(f"the store holds no records of profile {args.profile}")
        return 0
    print("Test AUROC, mean ± std over seeds (default framework)")
    for suite, table in tables["summary"].groupby(level="suite"):
        print(f"\n{suite}\n{mean_std(table.droplevel('suite'))}")
    titles = {
        "per_class": "Mean test AUROC per class",
        "ranks": "Average rank (1 = best)",
        "twins": "Torch minus Keras AUROC beside the seed spread",
        "cost": "Seconds per job",
    }
    for name, title in titles.items():
        table = tables[name]
        print(f"\n{title}\n{table.round(3) if not table.empty else '(no records)'}")
    failed = int(tables["summary"]["failed"].sum())
    if failed:
        print(
            f"\n{failed} records have no score (diverged or non-finite): see 'failed'"
        )
    return 0


def _plan(args) -> int:
    from .timing import plan

    if args.jobs:
        for job in jobs(**_selection(args)):
            print(job)
    table, totals = plan(
        args.profile, processes=args.processes, store=args.store, **_selection(args)
    )
    print(table.round(1))
    print(
        f"\n{totals['jobs']} jobs ({totals['records']} records): "
        f"{totals['cpu_hours']:.2f} CPU hours = {totals['wall_hours']:.2f} h wall on "
        f"{totals['processes']} processes, each with a core of its own "
        f"({totals['measured_wall_hours']:.2f} h at the measured wall-clock speed)"
    )
    print(
        f"timings measured on {'; '.join(totals['hardware']) or 'nothing yet'}; "
        f"notes: {'; '.join(totals['notes']) or 'none'}"
    )
    return 0


def _time(args) -> int:
    from .timing import measure

    print(
        measure(
            args.profile,
            detectors=args.detector,
            epochs=args.epochs,
            store=args.store,
            note=args.note,
        )
    )
    return 0


COMMANDS = {"run": _run, "report": _report, "plan": _plan, "time": _time}

if __name__ == "__main__":
    sys.exit(main())
