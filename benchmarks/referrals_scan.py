"""The overdue scan over 1,000,000 referrals (DESIGN §10: under 200 ms).

`python -m benchmarks --scenarios referrals [--database postgresql] [--referrals N]`

No server runs here: the overdue check is a scheduler job (`scheduler.jobs.
OverdueReferrals`) that calls `store.referrals.nudge_overdue`, so it is measured against
the database directly, through the app's own engine (`store.db.create_engine`, asyncpg
with its prepared-statement cache, or aiosqlite) in a temporary database of its own.

1. Seeding. The schema comes from the migrations (`store.migrate.upgrade`, what `vigil db
   upgrade` runs); then one workspace, 8 staff (two DSLs, a head, key-holders, teachers),
   N/10 incidents and N referrals, generated in Python from the seed. On PostgreSQL they
   are written with asyncpg's binary COPY (`copy_records_to_table`) with
   `session_replication_role = replica` so the foreign-key triggers do not fire row by row
   (the rows are valid by construction, and checked afterwards), then `VACUUM (ANALYZE)`
   (autovacuum would long since have processed a table that size). On SQLite they go in
   with SQLAlchemy Core `insert()` executemany, and no ANALYZE (Vigil never runs one).
   The mix: 95% responded or closed (spread over three years), 5% awaiting; of those
   0.3% of all referrals (at least 500) overdue: some snoozed, some already nudged
   today, some nudged before, some never. Awaiting rows are scattered over the table.
2. The claim SELECT exactly as `nudge_overdue` issues it: its SQL and parameters are
   captured (`before_cursor_execute`) from a real call, then replayed through the same
   engine (`exec_driver_sql`), each run in its own transaction, rolled back. `now` is a
   fixed working-hours instant (Tuesday 10 March 2026, 10:00 London). The runs alternate
   with `SELECT count(*) FROM referrals` on the same connection (the reference).
3. `EXPLAIN (ANALYZE, BUFFERS)` of that statement (PostgreSQL; also the generic plan a
   prepared statement could switch to) or `EXPLAIN QUERY PLAN` (SQLite).
4. A batch: `nudge_overdue(limit=200)` in a session rolled back afterwards, so each
   repetition sees the same state; timed from the call (connection checkout, BEGIN,
   claim, lookups, the flush of every write) to its return, without the COMMIT.
5. A full pass: `OverdueReferrals.run()` itself, committed, timed per batch (COMMIT
   included); then the re-check the scheduler makes every few minutes once everything
   overdue has been nudged today (it finds nothing, but walks every overdue referral).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from structlog.testing import capture_logs

from benchmarks.database import _asyncpg_dsn, benchmark_database
from benchmarks.load import GC
from benchmarks.processes import cpu_seconds
from benchmarks.slack_paths import Measured
from benchmarks.stats import percentile
from scheduler.jobs import OverdueReferrals
from store import migrate, referrals
from store.crypto import Cipher, generate_key
from store.db import SessionFactory, create_engine, session_factory
from store.models import (
    Incident,
    Nudge,
    OutboxMessage,
    Referral,
    ReferralEvent,
    Staff,
    Workspace,
)
from store.school_config import SchoolConfig, load_school_config

LONDON = ZoneInfo("Europe/London")
# A fixed working-hours instant: a Tuesday in a week with no bank holiday in England.
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=LONDON).astimezone(dt.UTC)
PUBLIC_URL = "https://vigil.larkspur.example"
TEAM_ID = "T0REFERRALS"
TARGET_MS = 200.0  # DESIGN §10: overdue scan, 1,000,000 referrals, under 200 ms
DEFAULT_COUNT = {"postgresql": 1_000_000, "sqlite": 100_000}
QUICK_COUNT = 20_000
BATCH = referrals.NUDGE_BATCH  # 200, what the job claims per transaction
WARMUP = 3  # unmeasured runs of each query first
AWAITING_SHARE = 0.05
OVERDUE_SHARE = 0.003  # 3,000 of 1,000,000
MIN_OVERDUE = 500  # so a batch of 200 is full at small sizes too
REFERRALS_PER_INCIDENT = 10
SPAN = dt.timedelta(days=3 * 365)
CHUNK = 50_000  # referrals generated and written at a time
# The overdue ones: (kind, share). Eligible now: new, nudged_before, snooze_expired.
OVERDUE_MIX = (
    ("new", 0.25),
    ("nudged_before", 0.40),
    ("nudged_today", 0.20),
    ("snoozed", 0.10),
    ("snooze_expired", 0.05),
)
ELIGIBLE = frozenset({"new", "nudged_before", "snooze_expired"})
# (agency, timescale as stored, calendar days it roughly spans)
AGENCIES = (
    ("Children's social care (MASH)", "1 working day", 1.4),
    ("Police", "1 working day", 1.4),
    ("Early Help", "3 working days", 4.2),
    ("CAMHS", "10 working days", 14.0),
)
STAFF = (
    ("Hugh Dale", "dsl;slt"),
    ("Okafor Dee", "dsl"),
    ("Morgan Hale", "head;keyholder"),
    ("Priya Price", "pastoral;keyholder"),
    ("Sam Lowe", "keyholder;slt"),
    ("Ana Patel", "teacher"),
    ("Ben Ross", "teacher"),
    ("Cal Moss", "teacher"),
)
INCIDENT_COLUMNS = (
    "id",
    "workspace_id",
    "number",
    "author_id",
    "happened_at",
    "created_at",
    "narrative_ct",
    "parents_contacted",
    "parents_reason_ct",
    "slack_view_id",
)
REFERRAL_COLUMNS = (
    "id",
    "workspace_id",
    "incident_id",
    "action_id",
    "agency",
    "reference",
    "referred_at",
    "timescale",
    "due_at",
    "status",
    "responded_at",
    "closed_at",
    "snoozed_until",
    "last_nudged_on",
    "created_by_id",
    "created_at",
)
COUNT_SQL = "SELECT count(*) FROM referrals"


def default_count(backend: str, *, quick: bool) -> int:
    return QUICK_COUNT if quick else DEFAULT_COUNT[backend]


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """What was written, and what the overdue check should therefore find."""

    referrals: int
    incidents: int
    staff: int
    responded: int
    closed: int
    awaiting: int
    due_later: int
    overdue: int
    overdue_by_kind: dict[str, int]
    eligible: int  # overdue, not snoozed, not nudged today: what a pass nudges
    escalated: int  # of those, overdue by `escalate_after_working_days` or more
    expected_dms: int  # nudge DMs a full pass queues (DSLs, and the head when escalated)
    method: str
    seconds: float
    vacuum_analyze_s: float | None


@dataclass(frozen=True)
class _Plan:
    """The referrals to write: which rows are awaiting, and of what kind."""

    count: int
    incidents: int
    kinds: dict[int, str]  # referral id → "later" or an OVERDUE_MIX kind; others are done
    today: dt.date
    previous_working_day: dt.date


def _plan(count: int, config: SchoolConfig, rng: random.Random) -> _Plan:
    working = config.working_time
    today = working.working_day_of(NOW)
    previous = today
    for _ in range(30):  # bounded: the working day before today
        previous -= dt.timedelta(days=1)
        if working.is_working_day(previous):
            break
    awaiting = round(count * AWAITING_SHARE)
    overdue = min(awaiting, max(round(count * OVERDUE_SHARE), MIN_OVERDUE))
    ids = rng.sample(range(1, count + 1), awaiting)
    kinds = dict.fromkeys(ids[overdue:], "later")
    start = 0
    for position, (kind, share) in enumerate(OVERDUE_MIX):
        size = overdue - start if position == len(OVERDUE_MIX) - 1 else round(overdue * share)
        kinds.update(dict.fromkeys(ids[start : start + size], kind))
        start += size
    return _Plan(
        count=count,
        incidents=max(1, count // REFERRALS_PER_INCIDENT),
        kinds=kinds,
        today=today,
        previous_working_day=previous,
    )


def _incident_rows(
    plan: _Plan, *, workspace_id: int, authors: Sequence[int], narrative: bytes
) -> list[tuple[Any, ...]]:
    rng = random.Random(plan.incidents)
    start = NOW - SPAN
    step = SPAN / plan.incidents
    rows = []
    for number in range(1, plan.incidents + 1):
        created = start + step * number
        rows.append(
            (
                number,  # id
                workspace_id,
                number,
                rng.choice(authors),
                created - dt.timedelta(minutes=rng.randint(5, 240)),
                created,
                narrative,
                "yes",
                None,
                None,
            )
        )
    return rows


def _referral_chunks(
    plan: _Plan,
    *,
    workspace_id: int,
    creators: Sequence[int],
    rng: random.Random,
    chunk: int = CHUNK,
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows in REFERRAL_COLUMNS order, ids 1..count, `chunk` at a time."""
    start = NOW - SPAN
    span_s = SPAN.total_seconds()
    incident_step_s = span_s / plan.incidents
    day_s = 86_400.0
    today, previous = plan.today, plan.previous_working_day
    rows: list[tuple[Any, ...]] = []
    for referral_id in range(1, plan.count + 1):
        kind = plan.kinds.get(referral_id)
        agency, timescale, days = AGENCIES[int(rng.random() * len(AGENCIES))]
        takes = dt.timedelta(seconds=days * day_s)
        responded_at = closed_at = snoozed_until = last_nudged_on = None
        if kind is None:  # done: referred at any time in the three years
            referred = start + dt.timedelta(seconds=int(rng.random() * span_s))
            due = referred + takes
            late = rng.random()
            status = "responded" if late < 0.8 else "closed"
            if late < 0.9:
                responded_at = referred + takes * (late * 2.0)
            if status == "closed":
                closed_at = referred + takes * 3
            if late > 0.7:  # was nudged before the answer came
                last_nudged_on = (due + dt.timedelta(days=1)).date()
        else:
            status = "awaiting"
            if kind == "later":
                due = NOW + dt.timedelta(seconds=int(3600 + rng.random() * 30 * day_s))
            else:  # overdue: mostly by days, some long forgotten
                recent = rng.random() < 0.7
                age_s = 60 + rng.random() * (5 * day_s if recent else 120 * day_s)
                due = NOW - dt.timedelta(seconds=int(age_s))
                if kind == "nudged_today":
                    last_nudged_on = today
                elif kind in ("nudged_before", "snoozed", "snooze_expired"):
                    last_nudged_on = previous
                if kind == "snoozed":
                    snoozed_until = NOW + dt.timedelta(seconds=int(day_s * (0.5 + rng.random())))
                elif kind == "snooze_expired":
                    snoozed_until = NOW - dt.timedelta(seconds=int(60 + rng.random() * day_s))
            referred = due - takes
        newest = plan.incidents - int(rng.random() * 30)
        by_time = int((referred - start).total_seconds() / incident_step_s)
        incident_id = min(max(1, by_time - int(rng.random() * 30)), max(1, newest))
        rows.append(
            (
                referral_id,
                workspace_id,
                incident_id,
                None,
                agency,
                f"REF-{referral_id:07d}" if referral_id % 2 else None,
                referred,
                timescale,
                due,
                status,
                responded_at,
                closed_at,
                snoozed_until,
                last_nudged_on,
                creators[referral_id % len(creators)],
                referred,
            )
        )
        if len(rows) >= chunk:
            yield rows
            rows = []
    if rows:
        yield rows


async def _school(engine: AsyncEngine, incidents: int) -> tuple[int, list[int], list[int]]:
    """The workspace and its staff: (workspace id, every staff id, key-holder ids)."""
    async with engine.begin() as connection:
        workspace_id = (
            await connection.execute(
                insert(Workspace)
                .values(
                    team_id=TEAM_ID,
                    name="Larkspur Referrals Benchmark",
                    next_incident_number=incidents + 1,
                )
                .returning(Workspace.id)
            )
        ).scalar_one()
        await connection.execute(
            insert(Staff),
            [
                {
                    "workspace_id": workspace_id,
                    "email": f"staff{i}@larkspur.example",
                    "name": name,
                    "roles": roles,
                    "slack_user_id": f"U0REF{i:05d}",
                    "active": True,
                }
                for i, (name, roles) in enumerate(STAFF)
            ],
        )
        staff = (
            await connection.execute(
                select(Staff.id, Staff.roles)
                .where(Staff.workspace_id == workspace_id)
                .order_by(Staff.id)
            )
        ).all()
    keyholders = [i for i, roles in staff if {"dsl", "keyholder"} & set(roles.split(";"))]
    return workspace_id, [i for i, _ in staff], keyholders


async def _write_postgresql(
    database_url: str,
    plan: _Plan,
    incident_rows: list[tuple[Any, ...]],
    chunks: Iterator[list[tuple[Any, ...]]],
    say: Callable[[str], None],
) -> float:
    """COPY the rows in; VACUUM (ANALYZE); returns the VACUUM's seconds."""
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=10)
    try:
        # The rows are valid by construction (checked afterwards): no FK trigger per row.
        await connection.execute("SET session_replication_role = replica")
        async with connection.transaction():
            await connection.copy_records_to_table(
                "incidents", records=incident_rows, columns=INCIDENT_COLUMNS
            )
            written = 0
            for rows in chunks:
                await connection.copy_records_to_table(
                    "referrals", records=rows, columns=REFERRAL_COLUMNS
                )
                written += len(rows)
                if written % 200_000 == 0:
                    say(f"referrals: copied {written:,} of {plan.count:,}")
        await connection.execute("RESET session_replication_role")
        for table in ("incidents", "referrals"):
            await connection.execute(
                "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)",
                table,
                plan.incidents if table == "incidents" else plan.count,
            )
        started = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE)")
        return time.perf_counter() - started
    finally:
        await connection.close()


async def _write_sqlite(
    engine: AsyncEngine,
    incident_rows: list[tuple[Any, ...]],
    chunks: Iterator[list[tuple[Any, ...]]],
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(Incident.__table__),
            [dict(zip(INCIDENT_COLUMNS, r, strict=True)) for r in incident_rows],
        )
        for rows in chunks:
            await connection.execute(
                insert(Referral.__table__),
                [dict(zip(REFERRAL_COLUMNS, r, strict=True)) for r in rows],
            )


async def seed_referrals(
    engine: AsyncEngine,
    database_url: str,
    *,
    count: int,
    config: SchoolConfig,
    seed: int,
    say: Callable[[str], None],
) -> Seeded:
    """Migrate the empty database and write the referrals (see the module docstring)."""
    started = time.perf_counter()
    await migrate.upgrade(engine)
    rng = random.Random(seed)
    plan = _plan(count, config, rng)
    workspace_id, staff_ids, keyholders = await _school(engine, plan.incidents)
    narrative = Cipher(generate_key()).encrypt(
        "Said she was hungry and had not eaten since Friday; asked to stay late."
    )
    incident_rows = _incident_rows(
        plan, workspace_id=workspace_id, authors=staff_ids, narrative=narrative
    )
    collected: list[tuple[int, str, dt.datetime]] = []  # (id, kind, due) of the overdue

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        for rows in _referral_chunks(plan, workspace_id=workspace_id, creators=keyholders, rng=rng):
            for row in rows:
                kind = plan.kinds.get(row[0])
                if kind is not None and kind != "later":
                    collected.append((row[0], kind, row[8]))
            yield rows

    vacuum_s: float | None = None
    if engine.dialect.name == "postgresql":
        method = "asyncpg COPY (session_replication_role = replica), then VACUUM (ANALYZE)"
        vacuum_s = await _write_postgresql(database_url, plan, incident_rows, chunks(), say)
    else:
        method = "SQLAlchemy Core insert() executemany, one transaction, no ANALYZE"
        await _write_sqlite(engine, incident_rows, chunks())
    by_kind = Counter(kind for _, kind, _ in collected)
    working = config.working_time
    eligible = [(due, rid) for rid, kind, due in collected if kind in ELIGIBLE]
    escalated = sum(
        working.working_days_between(due, NOW) >= config.escalate_after_working_days
        for due, _ in eligible
    )
    dsls = sum("dsl" in roles.split(";") for _, roles in STAFF)
    heads = sum("head" in roles.split(";") for _, roles in STAFF)
    async with engine.connect() as connection:
        statuses = dict(
            (
                await connection.execute(
                    select(Referral.status, func.count()).group_by(Referral.status)
                )
            ).all()
        )
    return Seeded(
        referrals=count,
        incidents=plan.incidents,
        staff=len(staff_ids),
        responded=statuses.get("responded", 0),
        closed=statuses.get("closed", 0),
        awaiting=statuses.get("awaiting", 0),
        due_later=sum(1 for kind in plan.kinds.values() if kind == "later"),
        overdue=len(collected),
        overdue_by_kind={kind: by_kind.get(kind, 0) for kind, _ in OVERDUE_MIX},
        eligible=len(eligible),
        escalated=escalated,
        expected_dms=len(eligible) * dsls + escalated * heads,
        method=method,
        seconds=round(time.perf_counter() - started, 1),
        vacuum_analyze_s=None if vacuum_s is None else round(vacuum_s, 1),
    )


async def _expected_first_ids(connection: AsyncConnection, today: dt.date) -> list[int]:
    """The first batch, worked out in Python from every awaiting referral."""
    rows = await connection.execute(
        select(Referral.id, Referral.due_at, Referral.snoozed_until, Referral.last_nudged_on)
        .where(Referral.status == "awaiting")
        .order_by(Referral.due_at, Referral.id)
    )
    found = []
    for referral_id, due, snoozed, nudged in rows:
        if due > NOW or len(found) >= BATCH:
            break
        if (snoozed is None or snoozed <= NOW) and (nudged is None or nudged < today):
            found.append(referral_id)
    return found


async def _foreign_keys_valid(connection: AsyncConnection) -> bool:
    sql = (
        "SELECT count(*) FROM referrals r "
        "LEFT JOIN incidents i ON i.id = r.incident_id "
        "LEFT JOIN staff s ON s.id = r.created_by_id "
        "LEFT JOIN workspaces w ON w.id = r.workspace_id "
        "WHERE i.id IS NULL OR s.id IS NULL OR w.id IS NULL"
    )
    missing = (await connection.exec_driver_sql(sql)).scalar_one()
    orphans = (
        await connection.exec_driver_sql(
            "SELECT count(*) FROM incidents i LEFT JOIN staff s ON s.id = i.author_id "
            "WHERE s.id IS NULL"
        )
    ).scalar_one()
    return missing == 0 and orphans == 0


# -- measuring ------------------------------------------------------------------------------


class Statements:
    """Every SQL statement the engine sends while recording, with its time (the cursor's
    execute and fetch, as `before/after_cursor_execute` see them)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.recording = False
        self.log: list[tuple[str, Any, float]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cursor: Any, *_args: Any) -> None:
        conn.info["benchmark_started"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        started = conn.info.pop("benchmark_started", None)
        if self.recording and started is not None:
            self.log.append((statement, parameters, time.perf_counter() - started))

    def start(self) -> None:
        self.log = []
        self.recording = True

    def stop(self) -> list[tuple[str, Any, float]]:
        self.recording = False
        return self.log


@dataclass(frozen=True)
class Claim:
    """The claim SELECT as `nudge_overdue` sent it."""

    statement: str
    parameters: tuple[Any, ...]


async def capture_claim(
    factory: SessionFactory, statements: Statements, config: SchoolConfig
) -> tuple[Claim, int]:
    """Call `nudge_overdue` once (rolled back); its first statement is the claim."""
    async with factory() as session:
        statements.start()
        try:
            nudged = await referrals.nudge_overdue(
                session, config=config, public_url=PUBLIC_URL, now=NOW, limit=BATCH
            )
        finally:
            log = statements.stop()
            await session.rollback()
    statement, parameters, _ = log[0]
    if "FROM referrals" not in statement:
        raise RuntimeError(f"nudge_overdue's first statement is not the claim: {statement}")
    return Claim(statement, tuple(parameters)), nudged


async def _backend_pid(connection: AsyncConnection) -> int | None:
    if connection.dialect.name != "postgresql":
        return None
    pid = int((await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())
    await connection.rollback()  # each measured run begins its own transaction
    return pid


async def _timed(
    connection: AsyncConnection, statement: str, parameters: tuple[Any, ...], pid: int | None
) -> tuple[float, list[Any], float]:
    """One run in its own transaction, rolled back: (seconds, rows, backend CPU s)."""
    transaction = await connection.begin()
    try:
        await connection.exec_driver_sql("SELECT 1")  # the BEGIN goes out here, untimed
        cpu_before = cpu_seconds(pid) if pid else 0.0
        started = time.perf_counter()
        rows = list((await connection.exec_driver_sql(statement, parameters)).all())
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    finally:
        await transaction.rollback()
    return elapsed, rows, cpu


@dataclass
class _Series:
    latencies: list[float]
    cpu_s: float = 0.0
    wall_s: float = 0.0
    rows: Counter[int] | None = None
    first_ids: list[int] | None = None


async def scan_and_count(
    engine: AsyncEngine, claim: Claim, *, runs: int, warmup: int = WARMUP
) -> tuple[Measured, Measured, dict[str, Any]]:
    """The claim SELECT and count(*), alternating (first one, then the other), on one
    connection; each in its own rolled-back transaction."""
    scan = _Series([], rows=Counter())
    count = _Series([], rows=Counter())
    counted: set[int] = set()
    mark, bench = GC.mark(), time.process_time()
    async with engine.connect() as connection:
        pid = await _backend_pid(connection)
        first_ms: dict[str, float] = {}
        for index in range(warmup + runs):
            if index == warmup:  # CPU and collections of the measured runs only
                mark, bench = GC.mark(), time.process_time()
            order = ((scan, claim.statement, claim.parameters), (count, COUNT_SQL, ()))
            for series, statement, parameters in order if index % 2 == 0 else order[::-1]:
                elapsed, rows, cpu = await _timed(connection, statement, parameters, pid)
                key = "scan" if series is scan else "count"
                first_ms.setdefault(key, round(elapsed * 1000, 3))
                if index < warmup:
                    continue
                series.latencies.append(elapsed)
                series.cpu_s += cpu
                series.wall_s += elapsed
                if series is scan:
                    assert series.rows is not None
                    series.rows[len(rows)] += 1
                    if series.first_ids is None:
                        series.first_ids = [row[0] for row in rows]
                else:
                    counted.add(int(rows[0][0]))
        await connection.rollback()
    gc_stats, bench_cpu = GC.since(mark), time.process_time() - bench
    share = bench_cpu / 2
    assert scan.rows is not None
    measured_scan = Measured(
        scan.latencies,
        scan.wall_s,
        extra={
            "rows_returned": dict(scan.rows),
            "first_run_ms": first_ms.get("scan"),
            "warmup": warmup,
        },
        gc=gc_stats,
        cpu_s=scan.cpu_s,
        bench_cpu_s=share,
    )
    measured_count = Measured(
        count.latencies,
        count.wall_s,
        extra={"counted": sorted(counted), "first_run_ms": first_ms.get("count")},
        gc=gc_stats,
        cpu_s=count.cpu_s,
        bench_cpu_s=share,
    )
    return measured_scan, measured_count, {"first_ids": scan.first_ids or []}


async def recheck(engine: AsyncEngine, claim: Claim, *, runs: int) -> Measured:
    """The claim SELECT alone (after the pass: nothing left to nudge today)."""
    latencies: list[float] = []
    rows_returned: Counter[int] = Counter()
    cpu = 0.0
    mark, bench = GC.mark(), time.process_time()
    async with engine.connect() as connection:
        pid = await _backend_pid(connection)
        for index in range(WARMUP + runs):
            if index == WARMUP:
                mark, bench = GC.mark(), time.process_time()
            elapsed, rows, used = await _timed(connection, claim.statement, claim.parameters, pid)
            if index >= WARMUP:
                latencies.append(elapsed)
                rows_returned[len(rows)] += 1
                cpu += used
    return Measured(
        latencies,
        sum(latencies),
        extra={"rows_returned": dict(rows_returned), "warmup": WARMUP},
        gc=GC.since(mark),
        cpu_s=cpu,
        bench_cpu_s=time.process_time() - bench,
    )


def _summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values]
    if not ms:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


async def batches(
    factory: SessionFactory,
    statements: Statements,
    claim: Claim,
    config: SchoolConfig,
    *,
    runs: int,
) -> Measured:
    """`nudge_overdue(limit=200)`, each run rolled back: the whole batch, and inside it
    the claim and every other statement."""
    latencies: list[float] = []
    claims: list[float] = []
    db: list[float] = []
    nudged: Counter[int] = Counter()
    sent: Counter[int] = Counter()
    mark, bench = GC.mark(), time.process_time()
    for index in range(WARMUP + runs):
        if index == WARMUP:
            mark, bench = GC.mark(), time.process_time()
        async with factory() as session:
            statements.start()
            try:
                started = time.perf_counter()
                done = await referrals.nudge_overdue(
                    session, config=config, public_url=PUBLIC_URL, now=NOW, limit=BATCH
                )
                elapsed = time.perf_counter() - started
            finally:
                log = statements.stop()
                await session.rollback()
        if index < WARMUP:
            continue
        latencies.append(elapsed)
        nudged[done] += 1
        sent[len(log)] += 1
        claims += [seconds for statement, _, seconds in log if statement == claim.statement]
        db.append(sum(seconds for *_, seconds in log))
    return Measured(
        latencies,
        sum(latencies),
        extra={
            "nudged_per_batch": dict(nudged),
            "statements_per_batch": dict(sent),
            "claim_in_batch": _summary_ms(claims),
            "database_time": _summary_ms(db),
            "warmup": WARMUP,
            "rolled_back": True,
        },
        gc=GC.since(mark),
        bench_cpu_s=time.process_time() - bench,
    )


class _TimedSessions:
    """A session factory for `OverdueReferrals` that times each session (one batch)."""

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self.times: list[float] = []

    def __call__(self) -> _TimedSession:
        return _TimedSession(self.factory(), self.times)


class _TimedSession:
    def __init__(self, session: AsyncSession, times: list[float]) -> None:
        self.session = session
        self.times = times
        self.started = 0.0

    async def __aenter__(self) -> AsyncSession:
        self.started = time.perf_counter()
        return await self.session.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.session.__aexit__(*exc)
        finally:
            self.times.append(time.perf_counter() - self.started)


async def full_pass(
    factory: SessionFactory, statements: Statements, claim: Claim, config: SchoolConfig
) -> tuple[Measured, dict[str, Any]]:
    """`OverdueReferrals.run()` as the scheduler runs it (committed), per batch."""
    timed = _TimedSessions(factory)
    job = OverdueReferrals(
        factory=timed,  # type: ignore[arg-type]
        config=config,
        public_url=PUBLIC_URL,
        notify_outbox=lambda: None,
        clock=lambda: NOW,
        batch_size=BATCH,
    )
    mark, bench = GC.mark(), time.process_time()
    statements.start()
    with capture_logs() as logs:
        started = time.perf_counter()
        nudged = await job.run()
        wall = time.perf_counter() - started
    log = statements.stop()
    claims = [round(s * 1000, 3) for statement, _, s in log if statement == claim.statement]
    failures = [entry for entry in logs if entry.get("event") == "job.overdue_referrals_failed"]
    detail = {
        "nudged": nudged,
        "batches": len(timed.times),
        "seconds": round(wall, 3),
        "batch_ms": [round(t * 1000, 1) for t in timed.times],
        "claim_ms_per_batch": claims,
        "statements": len(log),
        "failures": [str(entry)[:300] for entry in failures],
    }
    measured = Measured(
        list(timed.times),
        wall,
        extra={"nudged": nudged, "batches": len(timed.times), "committed": True},
        gc=GC.since(mark),
        bench_cpu_s=time.process_time() - bench,
    )
    return measured, detail


# -- plans ----------------------------------------------------------------------------------


def _pg_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'::date"
    return "'" + str(value).replace("'", "''") + "'"


async def explain(
    engine: AsyncEngine, database_url: str, claim: Claim, *, generic: bool = True
) -> dict[str, str | None]:
    """The scan's plan (and count(*)'s), executed in transactions rolled back."""
    plans: dict[str, str | None] = {}
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            for key, statement, parameters in (
                ("overdue_scan", claim.statement, claim.parameters),
                ("count", COUNT_SQL, ()),
            ):
                transaction = await connection.begin()
                try:
                    rows = await connection.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                    )
                    plans[key] = "\n".join(row[0] for row in rows)
                finally:
                    await transaction.rollback()
        else:
            for key, statement, parameters in (
                ("overdue_scan", claim.statement, claim.parameters),
                ("count", COUNT_SQL, ()),
            ):
                rows = await connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters
                )
                plans[key] = _sqlite_plan(list(rows))
            await connection.rollback()
    if generic and engine.dialect.name == "postgresql":
        plans["overdue_scan_generic"] = await _generic_plan(database_url, claim)
    return plans


def _sqlite_plan(rows: Sequence[Any]) -> str:
    depth: dict[int, int] = {0: -1}
    lines = ["QUERY PLAN"]
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + "|--" + str(detail))
    return "\n".join(lines)


async def _generic_plan(database_url: str, claim: Claim) -> str:
    """The plan PostgreSQL would use if the prepared statement switched to a generic
    plan (`plan_cache_mode = force_generic_plan`): `status = $1` unknown at plan time."""
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=10)
    try:
        await connection.execute("PREPARE vigil_overdue_scan AS " + claim.statement)
        literals = ", ".join(_pg_literal(value) for value in claim.parameters)
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            rows = await connection.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE vigil_overdue_scan({literals})"
            )
        finally:
            await transaction.rollback()
        return "\n".join(row[0] for row in rows)
    finally:
        await connection.close()


def uses_partial_index(plan: str | None) -> bool:
    return plan is not None and "ix_referrals_awaiting_due" in plan


async def _table_counts(connection: AsyncConnection) -> dict[str, int]:
    counts = {}
    for name, model in (
        ("nudges", Nudge),
        ("referral_events", ReferralEvent),
        ("outbox", OutboxMessage),
    ):
        counts[name] = int(
            (await connection.execute(select(func.count()).select_from(model))).scalar_one()
        )
    return counts


# -- the group ------------------------------------------------------------------------------


async def run_group(
    database_choice: str,
    *,
    count: int | None,
    runs: int,
    seed: int,
    quick: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Seed, measure, check; the temporary database is dropped afterwards.

    Returns {"backend", "measured": {key: Measured}, "detail": {...}}.
    """
    config = load_school_config(None)
    if not config.working_time.is_working_time(NOW):
        raise RuntimeError(f"{NOW} is not working time under the default configuration")
    async with benchmark_database(database_choice) as database:
        size = count or default_count(database.backend, quick=quick)
        engine = create_engine(database.url, pool_size=2)
        try:
            say(f"referrals: seeding {size:,} on {database.backend}")
            async with asyncio.timeout(120 + size / 2000):
                seeded = await seed_referrals(
                    engine, database.url, count=size, config=config, seed=seed, say=say
                )
            say(
                f"referrals: seeded {seeded.referrals:,} ({seeded.awaiting:,} awaiting, "
                f"{seeded.overdue:,} overdue, {seeded.eligible:,} to nudge) in "
                f"{seeded.seconds} s"
            )
            async with asyncio.timeout(600):
                return await _measure(
                    engine, database.url, database.backend, seeded, config, runs, say
                )
        finally:
            await engine.dispose()


async def _measure(
    engine: AsyncEngine,
    url: str,
    backend: str,
    seeded: Seeded,
    config: SchoolConfig,
    runs: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    factory = session_factory(engine)
    statements = Statements(engine)
    today = config.working_time.working_day_of(NOW)
    GC.install()  # the server groups, if any, have finished and uninstalled it
    try:
        async with engine.connect() as connection:
            fk_valid = await _foreign_keys_valid(connection)
            expected_ids = await _expected_first_ids(connection, today)
            await connection.rollback()
        claim, probe_nudged = await capture_claim(factory, statements, config)
        say(f"referrals: overdue scan and count(*), {runs} runs each (+{WARMUP} warm-up)")
        scan, count, scan_detail = await scan_and_count(engine, claim, runs=runs)
        plans = await explain(engine, url, claim)
        batch_runs = max(3, runs // 2)
        say(f"referrals: nudge_overdue batch of {BATCH}, {batch_runs} runs rolled back")
        batch = await batches(factory, statements, claim, config, runs=batch_runs)
        async with engine.connect() as connection:
            after_rollbacks = await _table_counts(connection)
            await connection.rollback()
        say("referrals: a full pass of OverdueReferrals.run(), committed")
        pass_measured, pass_detail = await full_pass(factory, statements, claim, config)
        async with engine.connect() as connection:
            after_pass = await _table_counts(connection)
            await connection.rollback()
        say(f"referrals: the re-check after the pass, {runs} runs")
        recheck_measured = await recheck(engine, claim, runs=runs)
        recheck_plans = await explain(engine, url, claim, generic=False)
    finally:
        GC.uninstall()

    expected_rows = min(BATCH, seeded.eligible)
    plans["overdue_scan_recheck"] = recheck_plans["overdue_scan"]
    checks = {
        "referrals_seeded_foreign_keys_valid": fk_valid,
        "overdue_scan_uses_partial_index": uses_partial_index(plans["overdue_scan"]),
        "overdue_scan_claims_expected_rows": (
            set(scan.extra["rows_returned"]) == {expected_rows}
            and scan_detail["first_ids"] == expected_ids
            and probe_nudged == expected_rows
        ),
        "overdue_batch_nudged_expected": set(batch.extra["nudged_per_batch"]) == {expected_rows},
        "overdue_batches_rolled_back": not any(after_rollbacks.values()),
        "overdue_pass_nudged_every_eligible": (
            pass_detail["nudged"] == seeded.eligible
            and not pass_detail["failures"]
            and after_pass["nudges"] == seeded.eligible
            and after_pass["referral_events"] == seeded.eligible
            and after_pass["outbox"] == seeded.expected_dms
        ),
        "overdue_recheck_finds_none": set(recheck_measured.extra["rows_returned"]) == {0},
    }
    count_rows = count.extra["counted"]
    scan_p50 = percentile(scan.latencies, 50)
    count_p50 = percentile(count.latencies, 50)
    detail = {
        "database": backend,
        "seeded": asdict(seeded),
        "now": NOW.isoformat(),
        "now_local": NOW.astimezone(LONDON).strftime("%a %d %b %Y %H:%M %Z"),
        "today": today.isoformat(),
        "batch_size": BATCH,
        "runs": runs,
        "batch_runs": batch_runs,
        "warmup": WARMUP,
        "claim_statement": claim.statement,
        "claim_parameters": [str(value) for value in claim.parameters],
        "counted_rows": count_rows,
        "plans": plans,
        "uses_partial_index": checks["overdue_scan_uses_partial_index"],
        "scan_over_count_p50": round(scan_p50 / count_p50, 4) if count_p50 else None,
        "target_ms": TARGET_MS,
        "verdict": "PASS" if percentile(scan.latencies, 99) * 1000 < TARGET_MS else "MISS",
        "full_pass": pass_detail,
        "tables_after_rolled_back_batches": after_rollbacks,
        "tables_after_pass": after_pass,
        "checks": checks,
    }
    return {
        "backend": backend,
        "measured": {
            "overdue_scan": scan,
            "overdue_scan_recheck": recheck_measured,
            "overdue_batch": batch,
            "overdue_pass": pass_measured,
            "referrals_count": count,
        },
        "detail": detail,
    }


# -- the table ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_lines(report: dict[str, Any]) -> list[str]:
    """The referrals section of the printed table: the data, the figures, the plans."""
    detail = report.get("referrals")
    if not detail:
        return []
    seeded = detail["seeded"]
    scenarios, floors = report["scenarios"], report["floors"]
    scan, count = scenarios["overdue_scan"], floors["referrals_count"]
    batch, recheck_ = scenarios["overdue_batch"], scenarios["overdue_scan_recheck"]
    full = detail["full_pass"]
    kinds = seeded["overdue_by_kind"]
    size_note = (
        ""
        if seeded["referrals"] == 1_000_000
        else f" (DESIGN §10 states 1,000,000: {seeded['referrals']:,} here is indicative)"
    )
    lines = [
        "",
        f"Overdue referrals ({detail['database']}): {seeded['referrals']:,} referrals over "
        f"{seeded['incidents']:,} incidents{size_note}, seeded in {seeded['seconds']} s "
        f"({seeded['method']}).",
        f"  {seeded['responded']:,} responded, {seeded['closed']:,} closed, "
        f"{seeded['awaiting']:,} awaiting: {seeded['due_later']:,} due later, "
        f"{seeded['overdue']:,} overdue ({kinds['nudged_today']:,} nudged today, "
        f"{kinds['snoozed']:,} snoozed, {kinds['snooze_expired']:,} snooze over, "
        f"{kinds['nudged_before']:,} nudged before, {kinds['new']:,} never) → "
        f"{seeded['eligible']:,} to nudge ({seeded['escalated']:,} escalated); "
        f"now = {detail['now_local']}.",
        f"  Overdue scan (claim SELECT, batch {detail['batch_size']}): p50 "
        f"{_ms(scan['p50_ms'])} ms, p99 {_ms(scan['p99_ms'])} ms vs SELECT count(*) p50 "
        f"{_ms(count['p50_ms'])} ms, p99 {_ms(count['p99_ms'])} ms, alternating, "
        f"{scan['count']} runs each: scan/count {scan.get('ratio_p50')} (p50), "
        f"{scan.get('ratio_p99')} (p99). DESIGN §10 < {detail['target_ms']:.0f} ms: "
        f"{detail['verdict']}.",
        f"  Batch of {detail['batch_size']} (nudge_overdue, rolled back, no COMMIT): p50 "
        f"{_ms(batch['p50_ms'])} ms, p99 {_ms(batch['p99_ms'])} ms; inside it the claim p50 "
        f"{_ms(batch['claim_in_batch']['p50_ms'])} ms, all SQL p50 "
        f"{_ms(batch['database_time']['p50_ms'])} ms, statements "
        f"{batch['statements_per_batch']}, benchmark-process CPU "
        f"{_ms(batch.get('bench_cpu_ms_per_request'))} ms/batch.",
        f"  Full pass (OverdueReferrals.run, committed): {full['nudged']:,} nudged in "
        f"{full['batches']} batches, {full['seconds']} s; batch ms {full['batch_ms']}; "
        f"claim ms per batch {full['claim_ms_per_batch']}.",
        f"  Re-check after the pass (nothing left today): p50 {_ms(recheck_['p50_ms'])} ms, "
        f"p99 {_ms(recheck_['p99_ms'])} ms, rows {recheck_['rows_returned']}.",
        "",
        "Plan of the overdue scan"
        + (
            " (EXPLAIN (ANALYZE, BUFFERS), custom plan as asyncpg's prepared statement gets it):"
            if detail["database"] == "postgresql"
            else " (EXPLAIN QUERY PLAN):"
        ),
        *(f"  {line}" for line in (detail["plans"]["overdue_scan"] or "").splitlines()),
    ]
    generic = detail["plans"].get("overdue_scan_generic")
    if generic:
        lines += [
            "Generic plan (if the prepared statement switched: status = $1 unknown):",
            *(f"  {line}" for line in generic.splitlines()),
        ]
    lines += [
        "Plan of the re-check after the pass:",
        *(f"  {line}" for line in (detail["plans"]["overdue_scan_recheck"] or "").splitlines()),
        "Plan of SELECT count(*) FROM referrals:",
        *(f"  {line}" for line in (detail["plans"]["count"] or "").splitlines()),
    ]
    return lines
