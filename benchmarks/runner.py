"""One benchmark run: database, stand-in, Vigil, the Bolt floor, every scenario, the report."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
import platform
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from benchmarks import slack_paths
from benchmarks.database import benchmark_database
from benchmarks.floor import FloorServer
from benchmarks.load import GC, TimedSimulator
from benchmarks.report import build_report
from bot.demo_school import FORENAMES, STAFF, SURNAMES, TEAM_ID, DemoStaff
from bot.harness import SIGNING_SECRET, Harness

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"


@dataclass
class Options:
    """What to run. `quick()` gives small numbers for a smoke run."""

    database: str = "sqlite"
    requests: int = 400
    concurrency: int = 20
    pupils: int = 2000
    warmup: int = 20
    alert_runs: int = 3
    rate_limited_runs: int = 2
    seed: int = 20260901
    json_path: Path | None = DEFAULT_JSON
    quick: bool = False
    gc_freeze: bool = False  # experiment: gc.freeze() once started (Vigil does not do this)
    quiet_logs: bool = True
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick_run(cls, **overrides: Any) -> Options:
        values: dict[str, Any] = {
            "requests": 30,
            "concurrency": 5,
            "pupils": 200,
            "warmup": 5,
            "alert_runs": 1,
            "rate_limited_runs": 1,
            "quick": True,
        }
        values.update(overrides)
        return cls(**values)


def bench_staff(extra: int) -> tuple[DemoStaff, ...]:
    """The demo school's staff plus `extra` invented teachers without a class of their own."""
    invented = tuple(
        DemoStaff(
            slack_user_id=f"U0BENCH{i:04d}",
            email=f"bench.{i:04d}@larkspur.example",
            name=f"{FORENAMES[i % len(FORENAMES)]} {SURNAMES[(7 * i) % len(SURNAMES)]}",
            roles="teacher",
        )
        for i in range(1, extra + 1)
    )
    return (*STAFF, *invented)


def rss_mb() -> float:
    """Current resident set size of this process (MB), from /proc when available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576, 1)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB); ru_maxrss is KiB on Linux."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1_048_576 if sys.platform == "darwin" else 1024
    return round(peak / divisor, 1)


@contextlib.contextmanager
def quiet_logs(enabled: bool) -> Iterator[None]:
    """Vigil's production logging (INFO, JSON), written to /dev/null, restored afterwards.

    The log calls still run and are formatted as in production; only the output is
    discarded so the figures are readable.
    """
    if not enabled:
        yield
        return
    from bot.logs import configure

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        configure("INFO", "json")
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
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self.started
            print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


async def run(options: Options) -> dict[str, Any]:
    """Run every scenario; return the report (and write it to `options.json_path`)."""
    if options.requests < 1 or options.concurrency < 1 or options.pupils < 1:
        raise ValueError("--requests, --concurrency and --pupils must be positive")
    with quiet_logs(options.quiet_logs):
        report = await _run(options)
    if options.json_path is not None:
        import json

        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


async def _run(options: Options) -> dict[str, Any]:
    say = Progress(options.progress)
    rng = random.Random(options.seed)
    started_at = dt.datetime.now(dt.UTC)
    users_needed = max(options.concurrency, slack_paths.ALERTED + 1)
    staff = bench_staff(users_needed)
    users = [s.slack_user_id for s in staff[len(STAFF) :]][: options.concurrency]
    n, warm = options.requests, options.warmup
    n_single = max(10, n // 8)
    raw: dict[str, Any] = {"memory": {}}

    load_start = _load_average()
    say(f"database: {options.database}")
    async with benchmark_database(options.database) as database:
        harness = Harness(database_url=database.url, staff=staff)
        await harness.start()
        floor: FloorServer | None = None
        floor_sim: TimedSimulator | None = None
        janitor: slack_paths.StandInJanitor | None = None
        try:
            # The harness's simulator, swapped for the identical one that records timings.
            await harness.slack.close()
            harness.slack = TimedSimulator(
                app_url=f"{harness.server.url}/slack/events",
                signing_secret=SIGNING_SECRET,
                standin=harness.standin,
                team_id=TEAM_ID,
            )
            command = harness.settings.command
            with tempfile.TemporaryDirectory(prefix="vigil-bench-roster-") as directory:
                pupils = await harness.seed_school(Path(directory), pupils=options.pupils)
            say(f"seeded {len(staff)} staff, {len(pupils)} pupils")
            raw["memory"]["after_seed_mb"] = rss_mb()

            floor = FloorServer(
                standin=harness.standin, signing_secret=SIGNING_SECRET, command=command
            )
            await floor.start()
            floor_sim = TimedSimulator(
                app_url=floor.events_url,
                signing_secret=SIGNING_SECRET,
                standin=harness.standin,
                team_id=TEAM_ID,
            )

            janitor = slack_paths.StandInJanitor(harness.standin)
            janitor.start()
            if options.gc_freeze:
                gc.collect()
                gc.freeze()
            GC.install()

            # 1. /concern → views.open (floor first, then Vigil, same load)
            say("floor: /concern → views.open")
            f_open, f_http = await slack_paths.slash_command(
                floor_sim, harness.standin, users, command=command, total=n, warmup=warm
            )
            say("vigil: /concern → views.open")
            v_open, v_http = await slack_paths.slash_command(
                harness.slack, harness.standin, users, command=command, total=n, warmup=warm
            )
            await harness.server.tasks.idle()
            raw["concern_views_open"], raw["floor_command_views_open"] = v_open, f_open
            raw["concern_command_http"], raw["floor_command_http"] = v_http, f_http
            raw["memory"]["after_command_mb"] = rss_mb()

            # 2. pupil typeahead: one modal per user, opened once
            views = {
                user: await slack_paths.open_view(harness.slack, harness.standin, user, command)
                for user in users
            }
            await harness.server.tasks.idle()
            queries = slack_paths.typeahead_queries(pupils, n + warm, rng)
            say(f"floor: typeahead ({len(pupils)} pupils)")
            raw["floor_options"] = await slack_paths.typeahead(
                floor_sim, views, queries, total=n, warmup=warm
            )
            say(f"vigil: typeahead ({len(pupils)} pupils)")
            raw["typeahead"] = await slack_paths.typeahead(
                harness.slack, views, queries, total=n, warmup=warm
            )
            say(f"vigil: typeahead, 1 user ({n_single} requests)")
            raw["typeahead_1_user"] = await slack_paths.typeahead(
                harness.slack, {users[0]: views[users[0]]}, queries, total=n_single, warmup=warm
            )
            raw["memory"]["after_typeahead_mb"] = rss_mb()

            # 3. modal submission → answered (same payloads to the floor and to Vigil)
            option_pool = [
                await harness.pick_pupil(users[0], views[users[0]], p.upn)
                for p in rng.sample(pupils, min(50, len(pupils)))
            ]
            forms = slack_paths.submission_forms(option_pool, n + warm, rng)
            say("floor: modal submission → answered")
            raw["floor_submission"] = await slack_paths.submission(
                floor_sim, views, forms, total=n, warmup=warm
            )
            before = await slack_paths.incident_count(harness)
            say("vigil: modal submission → answered")
            raw["submission"] = await slack_paths.submission(
                harness.slack, views, forms, total=n, warmup=warm
            )
            filed = await slack_paths.incident_count(harness) - before
            raw["submission"].extra["incidents_filed"] = filed
            raw["submission"].extra["incidents_expected"] = n + warm
            raw["memory"]["after_submission_mb"] = rss_mb()
            sent_before, cpu_before = harness.server.worker.delivered, time.process_time()
            backlog_s, pending = await slack_paths.wait_outbox_empty(harness, timeout=180.0)
            drained = harness.server.worker.delivered - sent_before
            raw["outbox_backlog"] = {
                "drained_after_s": round(backlog_s, 2),
                "still_pending": pending,
                "messages_drained": drained,
                "messages_per_s": round(drained / backlog_s, 1) if backlog_s > 0 else None,
                "cpu_ms_per_message": (
                    round((time.process_time() - cpu_before) * 1000 / drained, 2)
                    if drained
                    else None
                ),
                "messages_sent_during_run": harness.server.worker.delivered,
            }
            say(f"outbox backlog drained in {backlog_s:.1f}s (pending {pending})")
            say(f"vigil: modal submission, 1 user ({n_single} requests)")
            raw["submission_1_user"] = await slack_paths.submission(
                harness.slack,
                {users[0]: views[users[0]]},
                forms,
                total=n_single,
                warmup=min(warm, 5),
            )
            await slack_paths.wait_outbox_empty(harness, timeout=60.0)
            await janitor.stop()
            harness.standin.messages.clear()

            # 4. submission → all 30 alerts delivered, then the same under 429s
            author = users[0]
            plan = slack_paths.plan_alerts(staff, pupils, author)
            raw["alerts_30"] = []
            for index in range(options.alert_runs):
                say(f"vigil: 30 alerts, run {index + 1}/{options.alert_runs}")
                raw["alerts_30"].append(
                    await slack_paths.alert_run(harness, plan, rng, rate_limited=False)
                )
            raw["alerts_30_rate_limited"] = []
            for index in range(options.rate_limited_runs):
                say(f"vigil: 30 alerts under 429s, run {index + 1}/{options.rate_limited_runs}")
                raw["alerts_30_rate_limited"].append(
                    await slack_paths.alert_run(harness, plan, rng, rate_limited=True)
                )
            raw["memory"]["after_alerts_mb"] = rss_mb()
        finally:
            GC.uninstall()
            if options.gc_freeze:
                gc.unfreeze()
            if janitor is not None:
                await janitor.stop()
            if floor_sim is not None:
                await floor_sim.close()
            if floor is not None:
                await floor.stop()
            await harness.close()
        backend = database.backend

    raw["memory"]["peak_rss_mb"] = peak_rss_mb()
    meta = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - say.started, 1),
        "database": backend,
        "database_option": options.database
        if options.database in ("sqlite", "postgresql")
        else "url",
        "requests": n,
        "warmup": warm,
        "concurrency": options.concurrency,
        "pupils": options.pupils,
        "staff": len(staff),
        "alert_runs": options.alert_runs,
        "rate_limited_runs": options.rate_limited_runs,
        "rate_limit_per_second": slack_paths.RATE_LIMIT_PER_SECOND,
        "quick": options.quick,
        "load_average_start": load_start,
        "load_average_end": _load_average(),
        "gc_freeze": options.gc_freeze,
        "single_user_requests": n_single,
        "seed": options.seed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "event_loop": type(asyncio.get_running_loop()).__module__,
        "options": {k: str(v) for k, v in asdict(options).items() if k != "extra"},
    }
    return build_report(raw, meta)
