"""The overdue scan's plans: `EXPLAIN (ANALYZE, BUFFERS)` of the claim SELECT (PostgreSQL,
also the generic plan a prepared statement could switch to) or `EXPLAIN QUERY PLAN`
(SQLite), beside count(*)'s, each run in a transaction rolled back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.database import asyncpg_dsn
from benchmarks.referrals_timing import COUNT_SQL, Claim


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
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
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
    """Whether the plan reads the partial index of awaiting referrals."""
    return plan is not None and "ix_referrals_awaiting_due" in plan
