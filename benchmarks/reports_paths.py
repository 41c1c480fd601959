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
same load. Afterwards the SQL the pages send is captured (`before_cursor_execute`) from
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
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.database import benchmark_database
from benchmarks.load import drive
from benchmarks.processes import cpu_seconds, floor_process, memory_mb, run_vigil, vigil_process
from benchmarks.seed import History, seed_incidents
from benchmarks.slack_paths import BenchmarkError, Measured, _errors
from benchmarks.web_paths import PageClients, SignedIn, sign_in
from bot.settings import write_env_file
from store import chronology, reports
from store.crypto import Cipher, generate_key
from store.db import create_engine, session_factory
from store.models import AuditEvent, IncidentPupil, Pupil, Workspace
from store.school_config import load_school_config
from testing.school import TEAM_ID, TEAM_NAME, DemoStaff, fictional_pupils, pupils_csv, staff_csv
from testing.standin import SlackStandIn

TARGET_MS = 200.0
BUSIEST = 20  # the busiest pupils, a share of the chronology requests
BUSY_SHARE = 0.3
BIG_TABLES = (
    "incidents",
    "incident_pupils",
    "incident_categories",
    "incident_actions",
    "alerts",
    "read_receipts",
    "referrals",
    "pupils",
)


def pupil_weights(count: int, rng: random.Random) -> list[float]:
    """How often each pupil is the main pupil: 40% never, the rest a capped Pareto(2.5)
    draw (with 100,000 incidents over 20,000 pupils: ~260 pupils with 24 or more, the
    busiest ~120)."""
    return [0.0 if rng.random() < 0.4 else min(rng.paretovariate(2.5), 24.0) for _ in range(count)]


HISTORY_SPAN = dt.timedelta(days=2 * 365)


# -- driving pages ----------------------------------------------------------------------------


async def pages(
    clients: PageClients,
    *,
    base_url: str,
    session: SignedIn,
    paths: Sequence[str],
    total: int,
    warmup: int,
    concurrency: int,
    server_cpu: Callable[[], float],
    check: Callable[[str, bytes], bool] | None,
) -> Measured:
    """`concurrency` closed-loop clients GET `paths[i]`; HTTP round trips (200s only)."""
    users = [f"client-{k}" for k in range(concurrency)]
    sizes: list[int] = []

    async def one(_user: str, index: int) -> float:
        path = paths[index % len(paths)]
        status, body, seconds = await clients.get(f"{base_url}{path}", cookie=session.cookie)
        if status != 200:
            raise BenchmarkError(f"{path} answered {status}")
        if check is not None and not check(path, body):
            raise BenchmarkError(f"{path} is not the page asked for")
        sizes.append(len(body))
        return seconds

    warm = await drive(users, warmup, one)
    result = await drive(users, total, one, offset=warmup, server_cpu=server_cpu)
    extra = {
        "concurrency": concurrency,
        "mean_page_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
        "max_page_bytes": max(sizes, default=0),
        "all_ok": not result.errors and not warm.errors and len(result.samples) == total,
        "served": total + warmup,
    }
    return Measured.of(result, list(result.samples), _errors(warm, result), extra)


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


# -- EXPLAIN ----------------------------------------------------------------------------------


class Capture:
    """The SQL statements (and parameters) an engine sends while recording."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.log: list[tuple[str, Any]] = []
        self.recording = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.recording and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.log.append((statement, parameters))

    @contextlib.contextmanager
    def recording_into(self, found: list[tuple[str, Any]]) -> Any:
        self.log, self.recording = [], True
        try:
            yield
        finally:
            self.recording = False
            found.extend(self.log)


def seq_scans(plan: str, backend: str) -> list[str]:
    """The big tables a plan reads whole (PostgreSQL: Seq Scan; SQLite: SCAN w/o index)."""
    if backend == "postgresql":
        found = re.findall(r"Seq Scan on (\w+)", plan)
    else:
        found = [
            m.group(1)
            for m in re.finditer(r"\bSCAN (\w+)(?: AS \w+)?(.*)", plan)
            if "INDEX" not in m.group(2)
        ]
    return sorted({t for t in found if t in BIG_TABLES})


async def explain_all(
    engine: AsyncEngine, statements: Sequence[tuple[str, str, Any]]
) -> list[dict[str, Any]]:
    """Each (label, SQL, parameters) explained on the same database, rolled back."""
    backend = engine.dialect.name
    out = []
    async with engine.connect() as connection:
        for label, sql, parameters in statements:
            transaction = await connection.begin()
            try:
                if backend == "postgresql":
                    rows = await connection.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + sql, parameters
                    )
                    plan = "\n".join(row[0] for row in rows)
                else:
                    rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
                    plan = "\n".join(f"{row[0]}|{row[1]}| {row[3]}" for row in rows)
            finally:
                await transaction.rollback()
            took = re.search(r"Execution Time: ([\d.]+) ms", plan)
            out.append(
                {
                    "label": label,
                    "sql": sql,
                    "plan": plan,
                    "execution_ms": float(took.group(1)) if took else None,
                    "seq_scans": seq_scans(plan, backend),
                }
            )
    return out


async def capture_plans(
    engine: AsyncEngine,
    *,
    workspace_id: int,
    pupil_id: int,
    data_key: str,
    periods: Sequence[reports.DateRange],
) -> dict[str, list[dict[str, Any]]]:
    """The SQL of the chronology (one pupil) and of `term_report` per period, explained."""
    capture = Capture(engine)
    factory = session_factory(engine)
    working = load_school_config(None).working_time
    now = dt.datetime.now(dt.UTC)
    found: dict[str, list[tuple[str, str, Any]]] = {}
    chronology_sql: list[tuple[str, Any]] = []
    async with factory() as session, session.begin():
        with capture.recording_into(chronology_sql):
            await chronology.chronology(
                session,
                workspace_id=workspace_id,
                pupil_id=pupil_id,
                cipher=Cipher(data_key),
                now=now,
            )
    found["chronology"] = [
        (f"chronology #{i + 1}", sql, params) for i, (sql, params) in enumerate(chronology_sql)
    ]
    for period in periods:
        key = f"term_report {period.key}"
        found[key] = []
        async with factory() as session, session.begin():
            zone = working.zone
            calls: tuple[tuple[str, Callable[..., Any]], ...] = (
                (
                    "incidents_by_category",
                    partial(reports.incidents_by_category, period=period, zone=zone),
                ),
                ("year_groups", partial(reports.year_groups, period=period, zone=zone)),
                (
                    "late_alerts",
                    partial(reports.late_alerts, period=period, working=working, now=now),
                ),
                ("open_referrals", partial(reports.open_referrals, working=working, now=now)),
            )
            for name, call in calls:
                sql_log: list[tuple[str, Any]] = []
                with capture.recording_into(sql_log):
                    await call(session, workspace_id=workspace_id)
                found[key] += [
                    (f"{name} #{i + 1}", sql, params) for i, (sql, params) in enumerate(sql_log)
                ]
    return {key: await explain_all(engine, stmts) for key, stmts in found.items()}


# -- the group --------------------------------------------------------------------------------


async def run_group(
    options: Any, say: Callable[[str], None], raw: dict[str, Any], staff: Any
) -> str:
    """Seed, serve, sign in, measure, explain; fills `raw`; returns the backend."""
    from benchmarks import runner  # runner imports this module lazily

    rng = random.Random(options.seed + 17)
    async with (
        benchmark_database(options.database) as database,
        contextlib.AsyncExitStack() as stack,
    ):
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-bench-")))
        standin = SlackStandIn(team_id=TEAM_ID, team_name=TEAM_NAME)
        await standin.start()
        stack.push_async_callback(standin.stop)
        people: tuple[DemoStaff, ...] = staff
        for person in people:
            standin.add_user(person.slack_user_id, email=person.email, name=person.name)
        data_key = generate_key()
        settings = runner.vigil_environment(database.url, standin, data_key)
        env = {k: v for k, v in settings.items() if k not in runner.ENV_FILE_SETTINGS}
        write_env_file(workdir / ".env", {k: settings[k] for k in runner.ENV_FILE_SETTINGS})

        say(f"reports: database {database.backend}; vigil db upgrade")
        await run_vigil(["db", "upgrade"], env=env, cwd=workdir)
        pupils = fictional_pupils(options.report_pupils)
        (workdir / "staff.csv").write_text(staff_csv(people), encoding="utf-8")
        (workdir / "pupils.csv").write_text(pupils_csv(pupils), encoding="utf-8")
        for kind in ("staff", "pupils"):
            await run_vigil(
                ["import", kind, f"{kind}.csv", "--team", TEAM_ID], env=env, cwd=workdir
            )
        say(f"reports: imported {len(people)} staff, {len(pupils)} pupils (vigil import)")
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
            upn_of = dict((await session.execute(select(Pupil.id, Pupil.upn))).all())

        vigil = vigil_process(env=env, cwd=workdir)
        await vigil.start()
        stack.push_async_callback(vigil.stop)
        say(f"reports: vigil serve pid {vigil.pid} at {vigil.url}")
        sim = _simulator(runner, standin, vigil.url)
        stack.push_async_callback(sim.close)
        viewer = runner.keyholders(people)[0]
        signed = await sign_in(
            sim,
            user_id=viewer,
            command=runner.COMMAND,
            public_url=runner.PUBLIC_URL,
            server_url=vigil.url,
        )
        say("reports: signed in one key-holder (one-time link + TOTP)")

        working = load_school_config(None).working_time
        today = dt.datetime.now(dt.UTC).astimezone(working.zone).date()
        this_term = reports.term_of(today)
        last_term = reports.previous_term(today)
        c, n, warm = options.report_concurrency, options.report_requests, options.report_warmup
        n_single = max(20, n // 3)
        categories = [c_.name for c_ in _catalogue().categories]
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
        common = {"base_url": vigil.url, "session": signed, "server_cpu": vigil_cpu}
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
                session=signed,
                paths=[f"/incidents/{i}" for i in range(1, 1000)],
                total=n,
                warmup=warm,
                concurrency=c,
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
                paths=paths,
                total=total,
                warmup=warmup,
                concurrency=clients_n,
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


def _simulator(runner: Any, standin: SlackStandIn, url: str) -> Any:
    from benchmarks.load import TimedSimulator

    return TimedSimulator(
        app_url=f"{url}/slack/events",
        signing_secret=runner.SIGNING_SECRET,
        standin=standin,
        team_id=TEAM_ID,
    )


def _catalogue() -> Any:
    from store.catalogue import Catalogue

    return Catalogue.from_config()


async def _audited(factory: Any) -> int:
    """Chronology and report views in the audit log so far (each page view adds one)."""
    async with factory() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.action.in_(("chronology.view", "report.view")),
                    AuditEvent.outcome == "ok",
                )
            )
            or 0
        )


# -- the table --------------------------------------------------------------------------------


def table_lines(report: dict[str, Any]) -> list[str]:
    """Seeded history, the periods, and every plan (for the table)."""
    detail = report["reports"]
    seeded = detail["seeded"]
    busiest = seeded["busiest"]
    lines = [
        "",
        f"Reports history ({detail['backend']}"
        + (", indicative sizes" if detail["indicative"] else "")
        + f"): {seeded['pupils']:,} pupils ({seeded['pupils_named']:,} named on a concern), "
        f"{seeded['incidents']:,} incidents over two years, {seeded['alerts']:,} alerts, "
        f"{seeded['read_receipts']:,} receipts, {seeded['actions']:,} actions, "
        f"{seeded['referrals']:,} referrals, seeded in {seeded['seconds']} s; busiest pupils: "
        + ", ".join(str(b["incidents"]) for b in busiest[:10])
        + " incidents.",
        "Periods: "
        + "; ".join(
            f"{p['name']} ({p['key']}): {detail['periods']['incidents'][p['key']]:,} incidents"
            for p in (detail["periods"]["this_term"], detail["periods"]["last_term"])
        )
        + f". Views audited {detail['views_audited']}/{detail['pages_served']}.",
        "Sequential scans of big tables in these plans: "
        + (", ".join(detail["seq_scans"]) if detail["seq_scans"] else "none"),
    ]
    for key, group in detail["plans"].items():
        lines += ["", f"Plans: {key}"]
        for entry in group:
            took = entry["execution_ms"]
            lines.append(
                f"-- {entry['label']}"
                + (f" (execution {took:.2f} ms)" if took is not None else "")
                + (f" seq scans: {', '.join(entry['seq_scans'])}" if entry["seq_scans"] else "")
            )
            lines += [f"   {line}" for line in entry["plan"].splitlines()]
    return lines
