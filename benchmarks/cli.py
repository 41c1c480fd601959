"""`python -m benchmarks`: measure DESIGN §10's Slack paths and web view page."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from benchmarks.options import (
    ALL_SCENARIOS,
    DEFAULT_JSON,
    DEFAULT_SCENARIOS,
    SCENARIO_GROUPS,
    Options,
)
from benchmarks.runner import run
from benchmarks.table import format_table


def _scenarios(value: str) -> tuple[str, ...]:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    expanded = [name for part in parts for name in (ALL_SCENARIOS if part == "all" else [part])]
    chosen = tuple(dict.fromkeys(expanded))
    unknown = [name for name in chosen if name not in SCENARIO_GROUPS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"choose from {','.join(SCENARIO_GROUPS)} (comma-separated), not {value!r}"
        )
    return chosen


def _think(value: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in value.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"give LOW-HIGH seconds, such as 1-4, not {value!r}"
        ) from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 0 <= LOW <= HIGH, not {value!r}")
    return low, high


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Benchmark Vigil on 127.0.0.1: `vigil serve` in its own process against the "
            "Slack stand-in, beside bare-framework floors in their own processes. Prints a "
            "table and writes a JSON report."
        ),
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (temporary file, default), postgresql (temporary database on "
        "postgres@127.0.0.1:5432, dropped afterwards) or the URL of an empty database",
    )
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=DEFAULT_SCENARIOS,
        help="which groups to run, comma-separated: slack, web, referrals, reports, soak, or "
        "all (= slack,web,referrals,reports). Default slack,web,referrals: every DESIGN §10 "
        "row. referrals is the overdue scan over --referrals referrals, reports the "
        "chronology and term report over --report-incidents incidents, each in its own "
        "database; soak is --soak-staff staff working for --soak-minutes; trustday is a trust's "
        "busiest hour, open loop, at 1× and 2×, --workers 1 and 2 (issue 17)",
    )
    parser.add_argument("--requests", type=int, help="measured requests per Slack scenario (400)")
    parser.add_argument("--concurrency", type=int, help="concurrent Slack users (20)")
    parser.add_argument("--pupils", type=int, help="pupils on the roster (2000)")
    parser.add_argument("--warmup", type=int, help="warm-up requests per Slack scenario (20)")
    parser.add_argument("--alert-runs", type=int, help="30-alert repetitions (3)")
    parser.add_argument("--rate-limited-runs", type=int, help="30-alert runs under 429s (2)")
    parser.add_argument("--incidents", type=int, help="incidents stored for the web view (100000)")
    parser.add_argument("--web-requests", type=int, help="measured incident pages (2000)")
    parser.add_argument("--web-concurrency", type=int, help="concurrent web clients (50)")
    parser.add_argument("--web-warmup", type=int, help="warm-up incident pages (100)")
    parser.add_argument(
        "--referrals",
        type=int,
        help="referrals stored for the overdue scan (1000000 on PostgreSQL, 100000 on SQLite, "
        "20000 with --quick)",
    )
    parser.add_argument(
        "--referral-runs", type=int, help="measured runs of the overdue scan and count(*) (50)"
    )
    parser.add_argument(
        "--report-pupils", type=int, help="pupils on the roster for --scenarios reports (20000)"
    )
    parser.add_argument(
        "--report-incidents", type=int, help="incidents stored for --scenarios reports (100000)"
    )
    parser.add_argument(
        "--report-requests", type=int, help="measured chronology/report pages per row (300)"
    )
    parser.add_argument(
        "--report-concurrency", type=int, help="concurrent clients for the reports group (10)"
    )
    parser.add_argument(
        "--soak-minutes", type=float, help="how long --scenarios soak runs (10; 0.5 with --quick)"
    )
    parser.add_argument(
        "--soak-staff", type=int, help="staff working at once in the soak (50; 10 with --quick)"
    )
    parser.add_argument(
        "--soak-think",
        type=_think,
        metavar="LOW-HIGH",
        help="seconds each person pauses between actions in the soak (1-4)",
    )
    parser.add_argument(
        "--trust-schools",
        type=int,
        help="schools in the trust day, each its own Slack workspace installed through OAuth "
        "(50; 5 with --quick)",
    )
    parser.add_argument("--trust-staff", type=int, help="staff per school in the trust day (100)")
    parser.add_argument(
        "--trust-actions",
        type=float,
        help="actions per member of staff at the trust's busiest hour (2; 20 with --quick)",
    )
    parser.add_argument(
        "--trust-pupils", type=int, help="pupils per school in the trust day (300; 40 with --quick)"
    )
    parser.add_argument(
        "--trust-minutes",
        type=float,
        help="minutes per trust-day phase (2; 0.2 with --quick); 4 phases and 2 floor phases",
    )
    parser.add_argument("--file-mb", type=float, help="size of the --scenarios files file (20)")
    parser.add_argument("--file-runs", type=int, help="uploads and downloads (5; 1 with --quick)")
    parser.add_argument("--seed", type=int, help="random seed for queries, forms and data")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"report path (default {DEFAULT_JSON})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small numbers for a smoke run (2000 incidents, 10 web clients, 30 requests)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run Vigil and the floors inside the benchmark process (the old arrangement)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="vigil serve --workers N (PostgreSQL; CPU/req is then every process's)",
    )
    parser.add_argument(
        "--outbox-delivery",
        choices=("auto", "inline", "process"),
        default="auto",
        help="VIGIL_OUTBOX_DELIVERY: the outbox in the request loop or a process of its own",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
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
            ("incidents", args.incidents),
            ("web_requests", args.web_requests),
            ("web_concurrency", args.web_concurrency),
            ("web_warmup", args.web_warmup),
            ("referrals", args.referrals),
            ("referral_runs", args.referral_runs),
            ("report_pupils", args.report_pupils),
            ("report_incidents", args.report_incidents),
            ("report_requests", args.report_requests),
            ("report_concurrency", args.report_concurrency),
            ("soak_minutes", args.soak_minutes),
            ("soak_staff", args.soak_staff),
            ("soak_think", args.soak_think),
            ("trust_schools", args.trust_schools),
            ("trust_staff", args.trust_staff),
            ("trust_actions", args.trust_actions),
            ("trust_minutes", args.trust_minutes),
            ("trust_pupils", args.trust_pupils),
            ("file_mb", args.file_mb),
            ("file_runs", args.file_runs),
            ("seed", args.seed),
        )
        if value is not None
    }
    common = {
        "database": args.database,
        "scenarios": args.scenarios,
        "json_path": args.json,
        "progress": not args.quiet,
        "in_process": args.in_process,
        "workers": args.workers,
        "outbox_delivery": args.outbox_delivery,
    }
    if args.quick:
        return Options.quick_run(**common, **given)
    return Options(**common, **given)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        options.check()
    except ValueError as error:
        print(f"python -m benchmarks: {error}", file=sys.stderr)
        return 2
    report = asyncio.run(run(options))
    print(format_table(report))
    if options.json_path is not None:
        print(f"\nJSON report: {options.json_path}")
    return 0 if report["checks"]["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
