"""One benchmark run: database, stand-in, Vigil and the floors, every scenario, the report.

Vigil runs as its own process, as a school runs it (`python -m bot.cli serve` configured
by environment variables, the database prepared with `vigil db upgrade` and `vigil
import`); so do the floors (`python -m benchmarks.floor`). The Slack stand-in and the
load generator share the benchmark process. `Options.in_process` puts the servers back in
the benchmark process (for comparison with earlier figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import structlog

from benchmarks import files_paths, referrals_scan, reports_paths, slack_paths, trustday
from benchmarks.deployment import bench_staff
from benchmarks.options import SERVER_GROUPS, Options, single_user_requests
from benchmarks.report import build_report
from benchmarks.server_groups import run_server_groups
from bot.logs import configure
from testing.school import DemoStaff


@contextlib.contextmanager
def quiet_logs(enabled: bool) -> Iterator[None]:
    """For `--in-process`: Vigil's logging at WARNING (as the subprocess is configured),
    written to /dev/null, restored afterwards."""
    if not enabled:
        yield
        return
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        configure("WARNING", "json")
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        try:
            yield
        finally:
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            structlog.configure(**saved_structlog)


def _load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews latencies)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class Progress:
    """Progress lines on stderr, each with the seconds since the run started."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self.started
            print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


async def run(options: Options) -> dict[str, Any]:
    """Run the chosen scenarios; return the report (and write it to `options.json_path`)."""
    options.check()
    with quiet_logs(options.in_process):
        report = await _run(options)
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


async def _run(options: Options) -> dict[str, Any]:
    say = Progress(options.progress)
    started_at = dt.datetime.now(dt.UTC)
    users_needed = max(options.concurrency, slack_paths.ALERTED + 1)
    if "soak" in options.scenarios:
        users_needed = max(users_needed, options.soak_staff)
    staff = bench_staff(users_needed)
    raw: dict[str, Any] = {"memory": {}, "floor_memory": {}}
    load_start = _load_average()
    backend = "n/a"
    if set(options.scenarios) & set(SERVER_GROUPS):
        backend = await run_server_groups(options, say, raw, staff)
    if "referrals" in options.scenarios:
        backend = await _referrals_group(options, say, raw)
    if "reports" in options.scenarios:
        backend = await reports_paths.run_group(options, say, raw, staff)
    if "files" in options.scenarios:
        backend = await files_paths.run_group(options, say, raw, staff)
    if "trustday" in options.scenarios:
        backend = await trustday.run_group(options, say, raw)

    meta = _meta(
        options,
        say=say,
        started_at=started_at,
        backend=backend,
        staff=staff,
        raw=raw,
        load_start=load_start,
    )
    return build_report(raw, meta)


async def _referrals_group(options: Options, say: Progress, raw: dict[str, Any]) -> str:
    """The overdue scan over N referrals, in a temporary database of its own."""
    result = await referrals_scan.run_group(
        options.database,
        count=options.referrals,
        runs=options.referral_runs,
        seed=options.seed,
        quick=options.quick,
        say=say,
    )
    raw.update(result["measured"])
    raw["referrals"] = result["detail"]
    return str(result["backend"])


def _meta(
    options: Options,
    *,
    say: Progress,
    started_at: dt.datetime,
    backend: str,
    staff: tuple[DemoStaff, ...],
    raw: dict[str, Any],
    load_start: float | None,
) -> dict[str, Any]:
    referrals = raw.get("referrals")
    return {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - say.started, 1),
        "database": backend,
        "database_option": options.database
        if options.database in ("sqlite", "postgresql")
        else "url",
        "scenarios": list(options.scenarios),
        "servers": (
            ("the benchmark process" if options.in_process else "own processes")
            if set(options.scenarios) & {*SERVER_GROUPS, "reports", "files", "trustday"}
            else "none (database only)"
        ),
        "requests": options.requests,
        "warmup": options.warmup,
        "concurrency": options.concurrency,
        "pupils": options.pupils,
        "staff": len(staff),
        "alert_runs": options.alert_runs,
        "rate_limited_runs": options.rate_limited_runs,
        "rate_limit_per_second": slack_paths.RATE_LIMIT_PER_SECOND,
        "incidents": (
            options.incidents if {"web", "soak", "trustday"} & set(options.scenarios) else None
        ),
        "web_requests": options.web_requests,
        "web_concurrency": options.web_concurrency,
        "web_warmup": options.web_warmup,
        "quick": options.quick,
        "referrals": referrals["seeded"]["referrals"] if referrals else None,
        "referral_runs": options.referral_runs if referrals else None,
        "report_pupils": options.report_pupils if "reports" in options.scenarios else None,
        "report_incidents": options.report_incidents if "reports" in options.scenarios else None,
        "report_requests": options.report_requests,
        "report_concurrency": options.report_concurrency,
        "load_average_start": load_start,
        "load_average_end": _load_average(),
        "single_user_requests": single_user_requests(options.requests),
        "seed": options.seed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "event_loop": type(asyncio.get_running_loop()).__module__,
        "options": {k: str(v) for k, v in asdict(options).items() if k != "extra"},
    }
