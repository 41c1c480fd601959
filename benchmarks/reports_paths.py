"""The key-holders' chronology and term report as a school's history grows (`--scenarios
reports`): "with 100,000 incidents and 20,000 pupils, a chronology page and a term report
each answer in under 200 ms p99 on PostgreSQL (EXPLAIN shows index use)".

A database of its own (like the referrals group), prepared as a school does it (`vigil db
upgrade`, `vigil import staff|pupils` with `--report-pupils` invented pupils), then
`--report-incidents` incidents bulk-inserted by `benchmarks.seed` over the last two
years, shaped like a school's history (`seed.History`): 40% of pupils never named, the
rest weighted by a capped Pareto draw, so a few hundred pupils have dozens of concerns
and the busiest ~120; actions on 20% of incidents (3% of them re-categorise), agency
referrals on 4% (60% closed, 30% answered, 10% awaiting). `vigil serve` runs in its own
process; one key-holder signs in (one-time link + TOTP, `web_paths.sign_in`), and C
concurrent clients (then one) GET:

- `/pupils/{id}` (chronology): 70% a uniformly random pupil, 30% one of the 20 busiest,
  every fourth with a filter (a category and a date range); and the 20 busiest alone;
- `/reports` (this term, the default range) and `/reports?from=…&to=…` (last term).

Beside them: the web group's bare aiohttp floor (`benchmarks.floor web`), same clients,
same load. Afterwards the SQL the pages send is captured (`benchmarks.reports_plans`) from
the store functions themselves (`store.chronology.chronology` for the busiest pupil;
`store.reports.incidents_by_category`, `year_groups`, `late_alerts`, `open_referrals`,
i.e. `term_report`, for this and last term) and replayed as `EXPLAIN (ANALYZE, BUFFERS)`
(PostgreSQL) or `EXPLAIN QUERY PLAN` (SQLite) on the same database; sequential scans of
the big tables are listed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.database import benchmark_database, count_rows
from benchmarks.deployment import (
    COMMAND,
    PUBLIC_URL,
    keyholders,
    prepare_database,
    serve_environment,
    simulator,
    start_standin,
    vigil_environment,
)
from benchmarks.load import BenchmarkError
from benchmarks.options import Options
from benchmarks.processes import cpu_seconds, floor_process, memory_mb, vigil_process
from benchmarks.reports_plans import capture_plans
from benchmarks.seed import History, seed_incidents
from benchmarks.web_paths import PageClients, pages, sign_in
from store import keyring, reports
from store.catalogue import Catalogue
from store.crypto import Cipher, generate_key
from store.db import SessionFactory, create_engine, session_factory
from store.models import AuditEvent, IncidentPupil, Pupil, Workspace
from store.pupils import roster as pupil_roster
from store.school_config import load_school_config
from testing.school import TEAM_ID, DemoStaff, fictional_pupils

TARGET_MS = 200.0
BUSIEST = 20  # the busiest pupils, a share of the chronology requests
BUSY_SHARE = 0.3


def pupil_weights(count: int, rng: random.Random) -> list[float]:
    """How often each pupil is the main pupil: 40% never, the rest a capped Pareto(2.5)
    draw (with 100,000 incidents over 20,000 pupils: ~260 pupils with 24 or more, the
    busiest ~120)."""
    return [0.0 if rng.random() < 0.4 else min(rng.paretovariate(2.5), 24.0) for _ in range(count)]


HISTORY_SPAN = dt.timedelta(days=2 * 365)


def chronology_paths(
    pupil_ids: Sequence[int],
    busiest: Sequence[int],
    count: int,
    rng: random.Random,
    *,
    categories: Sequence[str],
    today: dt.date,
) -> list[str]:
    """Chronology paths: 70% any pupil, 30% a busy one; every fourth filtered."""
    found = []
    for i in range(count):
        pupil = rng.choice(busiest) if rng.random() < BUSY_SHARE else rng.choice(pupil_ids)
        path = f"/pupils/{pupil}"
        if i % 4 == 3:
            first = today - dt.timedelta(days=rng.randint(120, 500))
            path += f"?from={first.isoformat()}&to={today.isoformat()}"
            path += f"&category={rng.choice(categories).replace(' ', '+')}"
        found.append(path)
    return found


# -- the group --------------------------------------------------------------------------------


async def run_group(
    options: Options, say: Callable[[str], None], raw: dict[str, Any], staff: tuple[DemoStaff, ...]
) -> str:
    """Seed, serve, sign in, measure, explain; fills `raw`; returns the backend."""
    rng = random.Random(options.seed + 17)
    async with (
        benchmark_database(options.database) as database,
        contextlib.AsyncExitStack() as stack,
    ):
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        standin = await start_standin(stack, staff)
        data_key = generate_key()
        env = serve_environment(workdir, vigil_environment(database.url, standin, data_key))

        say(f"reports: database {database.backend}; vigil db upgrade")
        pupils = fictional_pupils(options.report_pupils)
        await prepare_database(env, workdir, staff, pupils)
        say(f"reports: imported {len(staff)} staff, {len(pupils)} pupils (vigil import)")
        history = History(
            span=HISTORY_SPAN,
            pupil_weights=pupil_weights(len(pupils), rng),
            recategorise_share=0.03,
            referral_share=0.04,
        )
        seeded = await seed_incidents(
            database.url,
            team_id=TEAM_ID,
            count=options.report_incidents,
            data_key=data_key,
            seed=options.seed,
            history=history,
            progress=say if options.report_incidents >= 20_000 else None,
        )
        say(f"reports: seeded {seeded.summary()}, {seeded.referrals} referrals")

        engine = create_engine(database.url, pool_size=2)
        stack.push_async_callback(engine.dispose)
        factory = session_factory(engine)
        async with factory() as session:
            workspace_id = int(
                await session.scalar(select(Workspace.id).where(Workspace.team_id == TEAM_ID))
            )
            pupil_ids = list(
                await session.scalars(select(Pupil.id).where(Pupil.workspace_id == workspace_id))
            )
            counted = func.count().label("n")
            busiest = (
                await session.execute(
                    select(IncidentPupil.pupil_id, counted)
                    .group_by(IncidentPupil.pupil_id)
                    .order_by(counted.desc(), IncidentPupil.pupil_id)
                    .limit(BUSIEST)
                )
            ).all()
            named = await session.scalar(select(func.count(func.distinct(IncidentPupil.pupil_id))))
            cipher = Cipher(data_key)  # kept while the roster is read: it opens the rows
            await keyring.load_data_keys(session, cipher, create=False)
            on_roll = await pupil_roster(session, workspace_id=workspace_id)
            upn_of = {p.id: p.upn for p in on_roll.pupils}

        vigil = vigil_process(env=env, cwd=workdir)
        await vigil.start()
        stack.push_async_callback(vigil.stop)
        say(f"reports: vigil serve pid {vigil.pid} at {vigil.url}")
        sim = simulator(standin, vigil.url)
        stack.push_async_callback(sim.close)
        signed = await sign_in(
            sim,
            user_id=keyholders(staff)[0],
            command=COMMAND,
            public_url=PUBLIC_URL,
            server_url=vigil.url,
        )
        say("reports: signed in one key-holder (one-time link + TOTP)")

        working = load_school_config(None).working_time
        today = dt.datetime.now(dt.UTC).astimezone(working.zone).date()
        this_term = reports.term_of(today)
        last_term = reports.previous_term(today)
        c, n, warm = options.report_concurrency, options.report_requests, options.report_warmup
        n_single = max(20, n // 3)
        categories = [c_.name for c_ in Catalogue.from_config().categories]
        busy_ids = [row[0] for row in busiest]
        mix = chronology_paths(
            pupil_ids, busy_ids, n + warm + n_single, rng, categories=categories, today=today
        )
        busy_paths = [f"/pupils/{busy_ids[i % len(busy_ids)]}" for i in range(n + warm)]
        last_query = f"from={last_term.first.isoformat()}&to={last_term.last.isoformat()}"

        def chronology_ok(path: str, body: bytes) -> bool:
            pupil = int(path.split("/")[2].split("?")[0])
            return f'id="doc-upn">{upn_of[pupil]}<'.encode() in body

        def report_ok(_path: str, body: bytes) -> bool:
            return b'id="report-scope"' in body

        clients = PageClients(c)
        stack.push_async_callback(clients.close)
        vigil_cpu = lambda: cpu_seconds(vigil.pid)  # noqa: E731
        common = {"base_url": vigil.url, "server_cpu": vigil_cpu}
        audit_before = await _audited(factory)

        # Page size for the floor: what a chronology page weighs.
        status, body, _ = await clients.get(f"{vigil.url}{mix[0]}", cookie=signed.cookie)
        if status != 200:
            raise BenchmarkError(f"{mix[0]} answered {status}")
        size = len(body)
        served = 1
        floor_server = floor_process("web", [f"--size={size}"], cwd=workdir)
        await floor_server.start()
        try:
            say(f"reports floor: constant {size}-byte page, {c} concurrent")
            raw["reports_floor_web_page"] = await pages(
                clients,
                base_url=floor_server.url,
                cookies=[signed.cookie] * c,
                paths=[f"/incidents/{i}" for i in range(1, 1000)],
                total=n,
                warmup=warm,
                server_cpu=lambda: cpu_seconds(floor_server.pid),
                check=None,
            )
        finally:
            floor_memory = memory_mb(floor_server.pid)
            await floor_server.stop()

        runs: tuple[tuple[str, list[str], int, int, int, Any], ...] = (
            ("chronology_page", mix, n, warm, c, chronology_ok),
            ("chronology_busiest", busy_paths, n, warm, c, chronology_ok),
            ("chronology_page_1_user", mix[n + warm :], n_single, min(warm, 5), 1, chronology_ok),
            ("term_report_page", ["/reports"], n, warm, c, report_ok),
            ("term_report_page_1_user", ["/reports"], n_single, min(warm, 5), 1, report_ok),
            ("last_term_report_page", [f"/reports?{last_query}"], n, warm, c, report_ok),
        )
        for key, paths, total, warmup, clients_n, check in runs:
            say(f"reports: {key}, {clients_n} concurrent, {total} requests")
            raw[key] = await pages(
                clients,
                cookies=[signed.cookie] * clients_n,
                paths=paths,
                total=total,
                warmup=warmup,
                check=check,
                **common,
            )
            served += total + warmup
        audited = await _audited(factory) - audit_before
        memory = memory_mb(vigil.pid)

        say("reports: EXPLAIN of the chronology (busiest pupil) and term_report's queries")
        plans = await capture_plans(
            engine,
            workspace_id=workspace_id,
            pupil_id=busy_ids[0],
            data_key=data_key,
            periods=(this_term, last_term),
        )
        incidents_in = {}
        for period in (this_term, last_term):
            async with factory() as session:
                months = await reports.incidents_by_category(
                    session, workspace_id=workspace_id, period=period, zone=working.zone
                )
            incidents_in[period.key] = months.total
        scans = sorted({t for group in plans.values() for p in group for t in p["seq_scans"]})
        raw["reports"] = {
            "backend": database.backend,
            "seeded": {
                **asdict(seeded),
                "pupils": len(pupils),
                "pupils_named": int(named or 0),
                "busiest": [{"pupil_id": p, "incidents": int(k)} for p, k in busiest],
            },
            "periods": {
                "this_term": {"key": this_term.key, "name": this_term.name},
                "last_term": {"key": last_term.key, "name": last_term.name},
                "incidents": incidents_in,
            },
            "plans": plans,
            "seq_scans": scans,
            "pages_served": served,
            "views_audited": audited,
            "memory": memory,
            "floor_memory": floor_memory,
            "indicative": database.backend != "postgresql"
            or options.report_incidents < 100_000
            or options.report_pupils < 20_000,
        }
        raw["reports"]["checks"] = {
            "reports_pages_all_200": all(raw[key].extra["all_ok"] for key, *_ in runs),
            "reports_every_view_audited": audited == served,
        }
        if "peak_mb" not in raw["memory"]:
            raw["memory"].update(memory)
            raw["memory"]["separate_process"] = True
        return database.backend


async def _audited(factory: SessionFactory) -> int:
    """Chronology and report views in the audit log so far (each page view adds one)."""
    return await count_rows(
        factory,
        AuditEvent,
        AuditEvent.action.in_(("chronology.view", "report.view")),
        AuditEvent.outcome == "ok",
    )
