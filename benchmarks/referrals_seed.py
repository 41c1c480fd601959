"""The overdue scan's data: N referrals over N/10 incidents in a school of 8 staff.

Generated in Python from the seed and written, after the migrations, with asyncpg's binary
COPY (PostgreSQL; the foreign-key triggers off, `VACUUM (ANALYZE)` afterwards) or
SQLAlchemy Core executemany (SQLite). 95% of referrals are responded or closed (over three
years), 5% awaiting; of those 0.3% of all referrals (at least 500) overdue: some snoozed,
some already nudged today, some nudged before, some never. `Seeded` says what was written
and therefore what the overdue check must find. See `benchmarks.referrals_scan`.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks.database import asyncpg_dsn
from store import migrate, referrals
from store.crypto import Cipher, generate_key
from store.models import (
    Incident,
    Referral,
    Staff,
    Workspace,
)
from store.school_config import SchoolConfig

LONDON = ZoneInfo("Europe/London")
# A fixed working-hours instant: a Tuesday in a week with no bank holiday in England.
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=LONDON).astimezone(dt.UTC)
PUBLIC_URL = "https://vigil.larkspur.example"
TEAM_ID = "T0REFERRALS"
BATCH = referrals.NUDGE_BATCH  # 200, what the job claims per transaction
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
    "reference_ct",
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
                None,  # references are sealed per row: the scan never reads them
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
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
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
    narrative = Cipher(generate_key()).legacy_encrypt(
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


async def expected_first_ids(connection: AsyncConnection, today: dt.date) -> list[int]:
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


async def foreign_keys_valid(connection: AsyncConnection) -> bool:
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
