"""`python -m benchmarks`: measure the Slack paths of DESIGN §10 against the stand-in."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from benchmarks.report import format_table
from benchmarks.runner import DEFAULT_JSON, Options, run


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Benchmark Vigil's Slack paths on 127.0.0.1 against the Slack stand-in, beside a "
            "bare Bolt app (the floor). Prints a table and writes a JSON report."
        ),
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (temporary file, default), postgresql (temporary database on "
        "postgres@127.0.0.1:5432, dropped afterwards) or a database URL",
    )
    parser.add_argument("--requests", type=int, help="measured requests per scenario (400)")
    parser.add_argument("--concurrency", type=int, help="concurrent simulated users (20)")
    parser.add_argument("--pupils", type=int, help="pupils on the roster (2000)")
    parser.add_argument("--warmup", type=int, help="warm-up requests per scenario (20)")
    parser.add_argument("--alert-runs", type=int, help="30-alert repetitions (3)")
    parser.add_argument("--rate-limited-runs", type=int, help="30-alert runs under 429s (2)")
    parser.add_argument("--seed", type=int, help="random seed for queries and forms")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"report path (default {DEFAULT_JSON})"
    )
    parser.add_argument("--quick", action="store_true", help="small numbers for a smoke run")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() once everything has started (Vigil does not do this)",
    )
    args = parser.parse_args(argv)
    given = {
        name: value
        for name, value in (
            ("requests", args.requests),
            ("concurrency", args.concurrency),
            ("pupils", args.pupils),
            ("warmup", args.warmup),
            ("alert_runs", args.alert_runs),
            ("rate_limited_runs", args.rate_limited_runs),
            ("seed", args.seed),
        )
        if value is not None
    }
    common = {
        "database": args.database,
        "json_path": args.json,
        "progress": not args.quiet,
        "gc_freeze": args.gc_freeze,
    }
    if args.quick:
        return Options.quick_run(**common, **given)
    return Options(**common, **given)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    report = asyncio.run(run(options))
    print(format_table(report))
    if options.json_path is not None:
        print(f"\nJSON report: {options.json_path}")
    return 0 if report["checks"]["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
