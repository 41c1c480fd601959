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
import gc
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select

from benchmarks import referrals_scan, slack_paths, web_paths
from benchmarks.database import Database, benchmark_database
from benchmarks.floor import bolt_app, web_app
from benchmarks.load import GC, TimedSimulator
from benchmarks.processes import (
    InProcessFloor,
    InProcessVigil,
    Server,
    cpu_seconds,
    floor_process,
    free_port,
    memory_mb,
    run_vigil,
    vigil_process,
)
from benchmarks.report import build_report
from benchmarks.seed import seed_incidents
from bot.settings import write_env_file
from handlers.concern_modal import CALLBACK_ID, PUPIL_SEARCH
from store.access import is_keyholder
from store.crypto import generate_key
from store.db import create_engine, session_factory
from store.models import AuditEvent
from testing.school import (
    FORENAMES,
    STAFF,
    SURNAMES,
    TEAM_ID,
    TEAM_NAME,
    DemoPupil,
    DemoStaff,
    fictional_pupils,
    pupils_csv,
    staff_csv,
)
from testing.standin import SlackStandIn

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
SIGNING_SECRET = "standin-signing-secret"
PUBLIC_URL = "https://vigil.larkspur.example"  # what links say; rewritten to the server's
COMMAND = "/concern"
SCENARIO_GROUPS = ("slack", "web", "referrals", "reports", "soak")
# Every DESIGN §10 row: the Slack paths, the incident page, the overdue scan, memory.
DEFAULT_SCENARIOS = ("slack", "web", "referrals")
ALL_SCENARIOS = ("slack", "web", "referrals", "reports")  # `--scenarios all` (not the soak)
SERVER_GROUPS = ("slack", "web", "soak")  # the groups that need `vigil serve` and the stand-in
# Given to `vigil serve` in a `.env` file in its working directory rather than in its
# environment: Bolt's AsyncApp reads SLACK_CLIENT_ID/SLACK_CLIENT_SECRET from os.environ
# and, finding both, switches to OAuth installation-store mode and answers every Slack
# request "installation no longer available" (see README "Known app issues").
ENV_FILE_SETTINGS = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


@dataclass
class Options:
    """What to run. `quick_run()` gives small numbers for a smoke run."""

    database: str = "sqlite"
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    requests: int = 400
    concurrency: int = 20
    pupils: int = 2000
    warmup: int = 20
    alert_runs: int = 3
    rate_limited_runs: int = 2
    incidents: int = 100_000
    web_requests: int = 2000
    web_concurrency: int = 50
    web_warmup: int = 100
    referrals: int | None = None  # None: 1,000,000 on PostgreSQL, 100,000 on SQLite
    referral_runs: int = 50
    # The reports group (chronology and term report; its own database and server).
    report_pupils: int = 20_000
    report_incidents: int = 100_000
    report_requests: int = 300
    report_concurrency: int = 10
    report_warmup: int = 20
    # The soak (`benchmarks.soak`): staff working at once, think time, duration.
    soak_minutes: float = 10.0
    soak_staff: int = 50
    soak_think: tuple[float, float] = (1.0, 4.0)
    seed: int = 20260901
    json_path: Path | None = DEFAULT_JSON
    quick: bool = False
    in_process: bool = False  # servers in the benchmark process (the old arrangement)
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
            "incidents": 2000,
            "web_requests": 100,
            "web_concurrency": 10,
            "web_warmup": 20,
            "referrals": referrals_scan.QUICK_COUNT,
            "referral_runs": 10,
            "report_pupils": 1000,
            "report_incidents": 3000,
            "report_requests": 30,
            "report_concurrency": 4,
            "report_warmup": 5,
            "soak_minutes": 0.5,
            "soak_staff": 10,
            "quick": True,
        }
        values.update(overrides)
        return cls(**values)

    def check(self) -> None:
        unknown = set(self.scenarios) - set(SCENARIO_GROUPS)
        if unknown or not self.scenarios:
            raise ValueError(f"--scenarios takes {','.join(SCENARIO_GROUPS)} (got {unknown})")
        for name in ("requests", "concurrency", "pupils", "incidents", "web_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.web_concurrency < 1 or min(self.warmup, self.web_warmup) < 0:
            raise ValueError("--web-concurrency must be positive, warm-ups not negative")
        if min(self.report_pupils, self.report_incidents, self.report_requests) < 1 or (
            self.report_concurrency < 1 or self.report_warmup < 0
        ):
            raise ValueError("--report-* numbers must be positive")
        if (
            "reports" in self.scenarios
            and len(self.scenarios) > 1
            and (self.database not in ("sqlite", "postgresql"))
        ):
            raise ValueError(
                "--database URL: run --scenarios reports on its own (it needs an empty "
                "database of its own)"
            )
        if (self.referrals is not None and self.referrals < 1) or self.referral_runs < 1:
            raise ValueError("--referrals and --referral-runs must be positive")
        if (
            "referrals" in self.scenarios
            and set(self.scenarios) & set(SERVER_GROUPS)
            and self.database not in ("sqlite", "postgresql")
        ):
            raise ValueError(
                "--database URL: run --scenarios referrals on its own (it needs an empty "
                "database of its own)"
            )


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


def keyholders(staff: tuple[DemoStaff, ...]) -> list[str]:
    return [s.slack_user_id for s in staff if is_keyholder(r for r in s.roles.split(";") if r)]


@contextlib.contextmanager
def quiet_logs(enabled: bool) -> Iterator[None]:
    """For `--in-process`: Vigil's logging at WARNING (as the subprocess is configured),
    written to /dev/null, restored afterwards."""
    if not enabled:
        yield
        return
    from bot.logs import configure

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
        import json

        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def vigil_environment(database_url: str, standin: SlackStandIn, data_key: str) -> dict[str, str]:
    """`vigil serve`'s configuration: what a school puts in its environment."""
    return {
        "VIGIL_DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": standin.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "VIGIL_SLACK_API_URL": standin.api_url,
        "VIGIL_HOST": "127.0.0.1",
        "VIGIL_PORT": str(free_port()),
        "VIGIL_PUBLIC_URL": PUBLIC_URL,
        "VIGIL_DATA_KEY": data_key,
        "VIGIL_LOCAL_DEV": "1",
        "SLACK_CLIENT_ID": standin.client_id,
        "SLACK_CLIENT_SECRET": standin.client_secret,
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_SHUTDOWN_TIMEOUT": "5",
    }


@dataclass
class Run:
    """Everything the scenario groups share."""

    options: Options
    say: Progress
    rng: random.Random
    staff: tuple[DemoStaff, ...]
    users: list[str]
    pupils: list[DemoPupil]
    standin: SlackStandIn
    env: dict[str, str]
    workdir: Path
    vigil: Server
    vigil_sim: TimedSimulator
    factory: Any
    raw: dict[str, Any]

    def vigil_cpu(self) -> float:
        return cpu_seconds(self.vigil.pid)

    def note_memory(self, label: str) -> None:
        self.raw["memory"][f"after_{label}_mb"] = memory_mb(self.vigil.pid)["rss_mb"]

    def simulator(self, url: str) -> TimedSimulator:
        return TimedSimulator(
            app_url=f"{url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=self.standin,
            team_id=TEAM_ID,
        )

    @contextlib.asynccontextmanager
    async def floor(self, kind: str, **settings: Any) -> AsyncIterator[Server]:
        """A floor server (own process unless --in-process), stopped afterwards."""
        server: Server
        if self.options.in_process:
            app = bolt_app(**settings) if kind == "bolt" else web_app(**settings)
            server = InProcessFloor(kind, app)
        else:
            args = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
            server = floor_process(kind, args, cwd=self.workdir)
        await server.start()
        try:
            yield server
        finally:
            if server.separate:
                self.raw["floor_memory"][kind] = memory_mb(server.pid)
            await server.stop()


async def _prepare(run: Run, database: Database) -> None:
    """`vigil db upgrade`, `vigil import staff|pupils`, and (web) the seeded incidents."""
    options, env, workdir = run.options, run.env, run.workdir
    run.say(f"database: {database.backend}; vigil db upgrade")
    await run_vigil(["db", "upgrade"], env=env, cwd=workdir)
    (workdir / "staff.csv").write_text(staff_csv(run.staff), encoding="utf-8")
    (workdir / "pupils.csv").write_text(pupils_csv(run.pupils), encoding="utf-8")
    for kind in ("staff", "pupils"):  # exits 1 (→ ProcessError) if any row is rejected
        await run_vigil(["import", kind, f"{kind}.csv", "--team", TEAM_ID], env=env, cwd=workdir)
    run.say(f"imported {len(run.staff)} staff, {len(run.pupils)} pupils (vigil import)")
    if {"web", "soak"} & set(options.scenarios):  # the soak reads among them too
        report = await seed_incidents(
            database.url,
            team_id=TEAM_ID,
            count=options.incidents,
            data_key=env["VIGIL_DATA_KEY"],
            seed=options.seed,
            progress=run.say if options.incidents >= 20_000 else None,
        )
        run.raw["seeded"] = asdict(report)
        run.say(f"seeded {report.summary()}")


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
        backend = await _server_groups(options, say, raw, staff)
    if "referrals" in options.scenarios:
        backend = await _referrals_group(options, say, raw)
    if "reports" in options.scenarios:
        from benchmarks import reports_paths

        backend = await reports_paths.run_group(options, say, raw, staff)

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


async def _server_groups(
    options: Options, say: Progress, raw: dict[str, Any], staff: tuple[DemoStaff, ...]
) -> str:
    """The slack and web groups: database, stand-in, `vigil serve`, floors; the backend."""
    async with (
        benchmark_database(options.database) as database,
        contextlib.AsyncExitStack() as stack,
    ):
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        standin = SlackStandIn(team_id=TEAM_ID, team_name=TEAM_NAME)
        await standin.start()
        stack.push_async_callback(standin.stop)
        for person in staff:
            standin.add_user(person.slack_user_id, email=person.email, name=person.name)
        settings = vigil_environment(database.url, standin, generate_key())
        env = {k: v for k, v in settings.items() if k not in ENV_FILE_SETTINGS}
        write_env_file(workdir / ".env", {k: settings[k] for k in ENV_FILE_SETTINGS})
        run = Run(
            options=options,
            say=say,
            rng=random.Random(options.seed),
            staff=staff,
            users=[s.slack_user_id for s in staff[len(STAFF) :]][: options.concurrency],
            pupils=fictional_pupils(options.pupils),
            standin=standin,
            env=env,
            workdir=workdir,
            vigil=None,  # type: ignore[arg-type]
            vigil_sim=None,  # type: ignore[arg-type]
            factory=None,
            raw=raw,
        )
        await _prepare(run, database)

        vigil: Server = (
            InProcessVigil(settings) if options.in_process else vigil_process(env=env, cwd=workdir)
        )
        await vigil.start()
        stack.push_async_callback(vigil.stop)
        run.vigil = vigil
        say(
            f"vigil serve: pid {vigil.pid} at {vigil.url}"
            + (" (in the benchmark process)" if not vigil.separate else "")
        )
        run.vigil_sim = run.simulator(vigil.url)
        stack.push_async_callback(run.vigil_sim.close)
        engine = create_engine(database.url, pool_size=2)
        stack.push_async_callback(engine.dispose)
        run.factory = session_factory(engine)
        run.note_memory("start")
        # The load generator's own full collections (its heap holds the stand-in's state)
        # would add pauses to the latencies it measures: keep start-up objects out of them.
        gc.collect()
        gc.freeze()
        stack.callback(gc.unfreeze)
        GC.install()
        stack.callback(GC.uninstall)

        if "slack" in options.scenarios:
            await _slack_group(run)
        if "web" in options.scenarios:
            await _web_group(run)
        if "soak" in options.scenarios:
            from benchmarks.soak import run_soak

            raw["soak"] = await run_soak(run)
        raw["memory"].update(memory_mb(vigil.pid))
        raw["memory"]["separate_process"] = vigil.separate
        return database.backend


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
            if set(options.scenarios) & {*SERVER_GROUPS, "reports"}
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
        "incidents": options.incidents if {"web", "soak"} & set(options.scenarios) else None,
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
        "single_user_requests": _single(options.requests),
        "seed": options.seed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "event_loop": type(asyncio.get_running_loop()).__module__,
        "options": {k: str(v) for k, v in asdict(options).items() if k != "extra"},
    }


def _single(requests: int) -> int:
    return max(10, requests // 8)


async def _slack_group(run: Run) -> None:
    """/concern → views.open, typeahead, submissions, the 30-alert fan-out (DESIGN §10)."""
    options, say, raw, rng, users = run.options, run.say, run.raw, run.rng, run.users
    n, warm, n_single = options.requests, options.warmup, _single(options.requests)
    vigil = slack_paths.SlackTarget(
        sim=run.vigil_sim,
        standin=run.standin,
        command=COMMAND,
        cpu=run.vigil_cpu,
        factory=run.factory,
    )
    async with run.floor(
        "bolt",
        signing_secret=SIGNING_SECRET,
        token=run.standin.bot_token,
        api_url=run.standin.api_url,
        command=COMMAND,
        callback_id=CALLBACK_ID,
        options_action_id=PUPIL_SEARCH,
    ) as floor_server:
        floor_sim = run.simulator(floor_server.url)
        floor = slack_paths.SlackTarget(
            sim=floor_sim,
            standin=run.standin,
            command=COMMAND,
            cpu=lambda: cpu_seconds(floor_server.pid),
        )
        janitor = slack_paths.StandInJanitor(run.standin)
        janitor.start()
        try:
            # 1. /concern → views.open (floor first, then Vigil, same load)
            say("floor: /concern → views.open")
            f_open, f_http = await slack_paths.slash_command(floor, users, total=n, warmup=warm)
            say("vigil: /concern → views.open")
            v_open, v_http = await slack_paths.slash_command(vigil, users, total=n, warmup=warm)
            await asyncio.sleep(slack_paths.SETTLE_S)
            raw["concern_views_open"], raw["floor_command_views_open"] = v_open, f_open
            raw["concern_command_http"], raw["floor_command_http"] = v_http, f_http
            run.note_memory("command")

            # 2. pupil typeahead: one modal per user, opened once
            views = {
                user: await slack_paths.open_view(run.vigil_sim, run.standin, user, COMMAND)
                for user in users
            }
            await asyncio.sleep(slack_paths.SETTLE_S)
            queries = slack_paths.typeahead_queries(run.pupils, n + warm, rng)
            say(f"floor: typeahead ({len(run.pupils)} pupils)")
            raw["floor_options"] = await slack_paths.typeahead(
                floor, views, queries, total=n, warmup=warm
            )
            say(f"vigil: typeahead ({len(run.pupils)} pupils)")
            raw["typeahead"] = await slack_paths.typeahead(
                vigil, views, queries, total=n, warmup=warm
            )
            say(f"vigil: typeahead, 1 user ({n_single} requests)")
            raw["typeahead_1_user"] = await slack_paths.typeahead(
                vigil, {users[0]: views[users[0]]}, queries, total=n_single, warmup=warm
            )
            run.note_memory("typeahead")

            # 3. modal submission → answered (same payloads to the floor and to Vigil)
            option_pool = [
                await slack_paths.pick_pupil(run.vigil_sim, users[0], views[users[0]], p.upn)
                for p in rng.sample(run.pupils, min(50, len(run.pupils)))
            ]
            forms = slack_paths.submission_forms(option_pool, n + warm, rng)
            say("floor: modal submission → answered")
            raw["floor_submission"] = await slack_paths.submission(
                floor, views, forms, total=n, warmup=warm
            )
            before = await slack_paths.incident_count(run.factory)
            sent_before = await slack_paths.sent_count(run.factory)
            say("vigil: modal submission → answered")
            raw["submission"] = await slack_paths.submission(
                vigil, views, forms, total=n, warmup=warm
            )
            filed = await slack_paths.incident_count(run.factory) - before
            raw["submission"].extra["incidents_filed"] = filed
            raw["submission"].extra["incidents_expected"] = n + warm
            run.note_memory("submission")
            # The alerts and receipts still queued: how fast the worker drains them.
            sent_then, cpu_before = await slack_paths.sent_count(run.factory), run.vigil_cpu()
            backlog_s, pending = await slack_paths.wait_outbox_empty(run.factory, timeout=180.0)
            cpu_after, sent_now = run.vigil_cpu(), await slack_paths.sent_count(run.factory)
            drained = sent_now - sent_then
            raw["outbox_backlog"] = {
                "drained_after_s": round(backlog_s, 2),
                "still_pending": pending,
                "messages_drained": drained,
                "messages_per_s": round(drained / backlog_s, 1) if backlog_s > 0 else None,
                "cpu_ms_per_message": (
                    round((cpu_after - cpu_before) * 1000 / drained, 2) if drained else None
                ),
                "messages_sent_during_run": sent_now - sent_before,
            }
            say(f"outbox backlog drained in {backlog_s:.1f}s (pending {pending})")
            say(f"vigil: modal submission, 1 user ({n_single} requests)")
            raw["submission_1_user"] = await slack_paths.submission(
                vigil,
                {users[0]: views[users[0]]},
                forms,
                total=n_single,
                warmup=min(warm, 5),
            )
            await slack_paths.wait_outbox_empty(run.factory, timeout=60.0)
            await janitor.stop()
            run.standin.messages.clear()

            # 4. submission → all 30 alerts delivered, then the same under 429s
            author = users[0]
            plan = slack_paths.plan_alerts(run.staff, run.pupils, author)
            raw["alerts_30"] = []
            for index in range(options.alert_runs):
                say(f"vigil: 30 alerts, run {index + 1}/{options.alert_runs}")
                raw["alerts_30"].append(
                    await slack_paths.alert_run(vigil, plan, rng, rate_limited=False)
                )
            raw["alerts_30_rate_limited"] = []
            for index in range(options.rate_limited_runs):
                say(f"vigil: 30 alerts under 429s, run {index + 1}/{options.rate_limited_runs}")
                raw["alerts_30_rate_limited"].append(
                    await slack_paths.alert_run(vigil, plan, rng, rate_limited=True)
                )
            run.note_memory("alerts")
        finally:
            await janitor.stop()
            await floor_sim.close()


async def _web_group(run: Run) -> None:
    """The incident page at C concurrent, 100,000 incidents stored (DESIGN §10)."""
    options, say, raw = run.options, run.say, run.raw
    seeded = raw["seeded"]
    first, last = seeded["first_number"], seeded["last_number"]
    c = options.web_concurrency
    n, warm = options.web_requests, options.web_warmup
    n_single = max(20, n // 10)
    sessions = await sign_in_keyholders(run)
    say(f"signed in {len(sessions)} key-holders to the web view (one-time link + TOTP)")
    numbers = web_paths.page_numbers(first, last, n + warm + n_single, run.rng)
    clients = web_paths.PageClients(c)
    try:
        status, body, _ = await clients.get(
            f"{run.vigil.url}/incidents/{numbers[0]}", cookie=sessions[0].cookie
        )
        if status != 200:
            raise slack_paths.BenchmarkError(f"/incidents/{numbers[0]} answered {status}")
        views_before = await _views_audited(run)
        async with run.floor("web", size=len(body)) as floor_server:
            say(f"floor: constant {len(body)}-byte page, {c} concurrent")
            raw["floor_web_page"] = await web_paths.incident_pages(
                clients,
                base_url=floor_server.url,
                sessions=sessions,
                numbers=numbers,
                total=n,
                warmup=warm,
                concurrency=c,
                server_cpu=lambda: cpu_seconds(floor_server.pid),
                check_page=False,
            )
        say(f"vigil: incident page, {options.incidents} incidents, {c} concurrent")
        raw["incident_page"] = await web_paths.incident_pages(
            clients,
            base_url=run.vigil.url,
            sessions=sessions,
            numbers=numbers,
            total=n,
            warmup=warm,
            concurrency=c,
            server_cpu=run.vigil_cpu,
        )
        run.note_memory("incident_page")
        say(f"vigil: incident page, 1 user ({n_single} requests)")
        raw["incident_page_1_user"] = await web_paths.incident_pages(
            clients,
            base_url=run.vigil.url,
            sessions=sessions[:1],
            numbers=numbers[n + warm :],
            total=n_single,
            warmup=min(warm, 10),
            concurrency=1,
            server_cpu=run.vigil_cpu,
        )
        audited = await _views_audited(run) - views_before
        served = n + warm + n_single + min(warm, 10)
        raw["incident_page"].extra["views_audited"] = audited
        raw["incident_page"].extra["views_served"] = served
    finally:
        await clients.close()


async def sign_in_keyholders(run: Run) -> list[web_paths.SignedIn]:
    """Every key-holder signed in to the web view (one-time link + TOTP), in staff order."""
    return [
        await web_paths.sign_in(
            run.vigil_sim,
            user_id=user_id,
            command=COMMAND,
            public_url=PUBLIC_URL,
            server_url=run.vigil.url,
        )
        for user_id in keyholders(run.staff)
    ]


async def _views_audited(run: Run) -> int:
    """Incident views in the audit log so far (each page view must add one)."""
    async with run.factory() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "incident.view", AuditEvent.outcome == "ok")
            )
            or 0
        )
