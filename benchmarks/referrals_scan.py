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
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks.database import benchmark_database
from benchmarks.load import GC
from benchmarks.options import REFERRALS, REFERRALS_QUICK
from benchmarks.referrals_plans import explain, uses_partial_index
from benchmarks.referrals_seed import (
    BATCH,
    LONDON,
    NOW,
    Seeded,
    expected_first_ids,
    foreign_keys_valid,
    seed_referrals,
)
from benchmarks.referrals_timing import (
    WARMUP,
    Statements,
    batches,
    capture_claim,
    full_pass,
    recheck,
    scan_and_count,
)
from benchmarks.stats import percentile
from store.db import create_engine, session_factory
from store.models import (
    Nudge,
    OutboxMessage,
    ReferralEvent,
)
from store.school_config import SchoolConfig, load_school_config

TARGET_MS = 200.0  # DESIGN §10: overdue scan, 1,000,000 referrals, under 200 ms


def default_count(backend: str, *, quick: bool) -> int:
    """How many referrals to seed when --referrals is not given."""
    return REFERRALS_QUICK if quick else REFERRALS[backend]


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
            fk_valid = await foreign_keys_valid(connection)
            expected_ids = await expected_first_ids(connection, today)
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
