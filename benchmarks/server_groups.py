"""The groups that drive one `vigil serve` against the Slack stand-in: slack, web, soak.

One database (prepared with `vigil db upgrade` and `vigil import`, plus the seeded
incidents the web view and the soak read among), one stand-in, one `vigil serve` in its
own process (or, with `--in-process`, in this one), and beside it the framework floors
(`benchmarks.floor`) driven by the same load generator:

- slack: /concern → views.open, the pupil typeahead, the modal submission, and one
  concern alerting 30 people (then the same under Slack-style 429s) (DESIGN §10);
- web: the incident page among `--incidents` stored, C clients at once; the caseload
  and search one user at a time (`benchmarks.casework_paths`);
- soak: `benchmarks.soak`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import random
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import casework_paths, slack_paths, web_paths
from benchmarks.database import Database, benchmark_database, count_rows
from benchmarks.deployment import (
    COMMAND,
    SIGNING_SECRET,
    Run,
    prepare_database,
    serve_environment,
    sign_in_keyholders,
    start_standin,
    vigil_environment,
)
from benchmarks.load import GC, BenchmarkError, Measured
from benchmarks.options import Options, single_user_requests
from benchmarks.processes import InProcessVigil, Server, cpu_seconds, memory_mb, vigil_process
from benchmarks.seed import History, seed_incidents
from benchmarks.soak import run_soak
from handlers.concern_modal import CALLBACK_ID, PUPIL_SEARCH
from store.catalogue import Catalogue
from store.crypto import generate_key
from store.db import create_engine, session_factory
from store.models import AuditEvent
from testing.school import STAFF, TEAM_ID, DemoStaff, fictional_pupils


async def run_server_groups(
    options: Options, say: Callable[[str], None], raw: dict[str, Any], staff: tuple[DemoStaff, ...]
) -> str:
    """The slack and web groups: database, stand-in, `vigil serve`, floors; the backend."""
    async with (
        benchmark_database(options.database) as database,
        contextlib.AsyncExitStack() as stack,
    ):
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        standin = await start_standin(stack, staff)
        settings = vigil_environment(database.url, standin, generate_key())
        settings["VIGIL_WORKERS"] = str(options.workers)
        settings["VIGIL_OUTBOX_DELIVERY"] = options.outbox_delivery
        env = serve_environment(workdir, settings)
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
            await slack_group(run)
        if "web" in options.scenarios:
            await web_group(run)
        if "soak" in options.scenarios:
            raw["soak"] = await run_soak(run)
        raw["memory"].update(memory_mb(run.vigil.pid))
        raw["memory"]["separate_process"] = run.vigil.separate
        return database.backend


async def _prepare(run: Run, database: Database) -> None:
    """`vigil db upgrade`, `vigil import staff|pupils`, and (web) the seeded incidents."""
    options, env = run.options, run.env
    run.say(f"database: {database.backend}; vigil db upgrade")
    await prepare_database(env, run.workdir, run.staff, run.pupils)
    run.say(f"imported {len(run.staff)} staff, {len(run.pupils)} pupils (vigil import)")
    if {"web", "soak"} & set(options.scenarios):  # the soak reads them too
        report = await seed_incidents(
            database.url,
            team_id=TEAM_ID,
            count=options.incidents,
            data_key=env["VIGIL_DATA_KEY"],
            seed=options.seed,
            progress=run.say if options.incidents >= 20_000 else None,
            history=History(case_statuses=True),
        )
        run.raw["seeded"] = asdict(report)
        run.say(f"seeded {report.summary()}")


async def slack_group(run: Run) -> None:
    """/concern → views.open, typeahead, submissions, the 30-alert fan-out (DESIGN §10)."""
    options, say, raw, rng, users = run.options, run.say, run.raw, run.rng, run.users
    n, warm, n_single = options.requests, options.warmup, single_user_requests(options.requests)
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


async def web_group(run: Run) -> None:
    """The incident page at C concurrent, 100,000 incidents stored (DESIGN §10)."""
    options, say, raw = run.options, run.say, run.raw
    seeded = raw["seeded"]
    first, last = seeded["first_number"], seeded["last_number"]
    c = options.web_concurrency
    n, warm = options.web_requests, options.web_warmup
    n_single = max(20, n // 10)
    sessions = await sign_in_keyholders(run.vigil_sim, run.staff, run.vigil.url)
    say(f"signed in {len(sessions)} key-holders to the web view (one-time link + TOTP)")
    numbers = web_paths.page_numbers(first, last, n + warm + n_single, run.rng)
    clients = web_paths.PageClients(c)
    try:
        status, body, _ = await clients.get(
            f"{run.vigil.url}/incidents/{numbers[0]}", cookie=sessions[0].cookie
        )
        if status != 200:
            raise BenchmarkError(f"/incidents/{numbers[0]} answered {status}")
        views_before = await _views_audited(run)

        async def bare(server: Any, *, one_user: bool = False) -> Measured:
            """A floor's (or the reference's) pages: only their status is checked."""
            return await web_paths.incident_pages(
                clients,
                base_url=server.url,
                sessions=sessions[:1] if one_user else sessions,
                numbers=numbers,
                total=n_single if one_user else n,
                warmup=min(warm, 10) if one_user else warm,
                concurrency=1 if one_user else c,
                server_cpu=lambda: cpu_seconds(server.pid),
                check_page=False,
            )

        async with run.floor("web", size=len(body)) as floor_server:
            say(f"floor: constant {len(body)}-byte page, {c} concurrent")
            raw["floor_web_page"] = await bare(floor_server)
            say(f"floor: constant {len(body)}-byte page, 1 user ({n_single} requests)")
            raw["floor_web_page_1_user"] = await bare(floor_server, one_user=True)
        async with run.floor(
            "web-db", size=len(body), database_url=run.env["VIGIL_DATABASE_URL"]
        ) as reference:
            say(f"reference: the same page after 1 read + 1 insert, {c} concurrent")
            raw["floor_web_db_page"] = await bare(reference)
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
        await _casework_pages(run, clients, sessions[0].cookie, n_single, min(warm, 10))
        raw["incident_page"].extra["views_audited"] = audited
        raw["incident_page"].extra["views_served"] = served
    finally:
        await clients.close()


async def _casework_pages(
    run: Run, clients: web_paths.PageClients, cookie: str, total: int, warmup: int
) -> None:
    """The caseload and search, one key-holder at a time (`benchmarks.casework_paths`)."""
    options, raw = run.options, run.raw
    categories = [c.name for c in Catalogue.from_config().categories]
    years = sorted({p.year_group for p in run.pupils})
    today = dt.datetime.now(dt.UTC).date()
    casework_rng = random.Random(options.seed + 13)
    pages = (
        (
            "caseload_page_1_user",
            casework_paths.caseload_paths(
                total + warmup, casework_rng, categories=categories, years=years
            ),
            casework_paths.is_caseload,
        ),
        (
            "search_page_1_user",
            casework_paths.search_paths(
                total + warmup, casework_rng, categories=categories, pupils=run.pupils, today=today
            ),
            casework_paths.is_search,
        ),
        (
            "text_search_page_1_user",
            casework_paths.text_search_paths(total + warmup, casework_rng),
            casework_paths.is_search,
        ),
    )
    for key, paths, check in pages:
        run.say(f"vigil: {key.removesuffix('_page_1_user')}, 1 user ({total} requests)")
        raw[key] = await web_paths.pages(
            clients,
            base_url=run.vigil.url,
            cookies=[cookie],
            paths=paths,
            total=total,
            warmup=warmup,
            server_cpu=run.vigil_cpu,
            check=check,
        )


async def _views_audited(run: Run) -> int:
    """Incident views in the audit log so far (each page view must add one)."""
    return await count_rows(
        run.factory,
        AuditEvent,
        AuditEvent.action == "incident.view",
        AuditEvent.outcome == "ok",
    )
