"""SQL pieces the report queries share, the same on PostgreSQL and SQLite."""

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    case,
    cast,
    literal,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from store.db import is_postgresql
from store.models import (
    IncidentAction,
)
from store.reports.periods import DateRange, local_midnight


async def plan_for_these_dates(session: AsyncSession) -> None:
    """PostgreSQL: plan each report query for the dates it is given, in this transaction.

    asyncpg prepares statements, and after five runs PostgreSQL may switch to a generic
    plan made without the dates; for a date range that plan can be several times slower
    (measured: 60 ms became 170 ms for `late_alerts`). Planning afresh costs well under
    a millisecond. SET LOCAL ends with the transaction.
    """
    if not is_postgresql(session):
        return
    transaction = session.get_transaction()
    if transaction is not None and session.info.get("vigil_custom_plans") is transaction:
        return
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    session.info["vigil_custom_plans"] = session.get_transaction()


class epoch_seconds(FunctionElement[float]):
    """A timestamp column as seconds since 1970 (UTC), on PostgreSQL and SQLite."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"date_part('epoch', {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds)
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # SQLite keeps Vigil's UTC datetimes as ISO text; julianday reads it as UTC.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def recategorised() -> ColumnElement[bool]:
    """An action that re-categorised its incident (the same test as in `store.actions`).

    Early rows stored "no re-categorisation" as JSON null rather than SQL NULL, and an
    empty list never counts: both are ruled out here as they are there.
    """
    return and_(
        IncidentAction.categories.isnot(None),
        cast(IncidentAction.categories, String).notin_(["null", "[]"]),
    )


def month_bucket(value: Any, period: DateRange, zone: ZoneInfo) -> ColumnElement[int]:
    """Which month of the range (0, 1, ...) a timestamp falls in, in school time."""
    months = period.months
    if len(months) == 1:
        return literal(0)
    edges = [local_midnight(m, zone) for m in months[1:]]
    return case(*((value < edge, index) for index, edge in enumerate(edges)), else_=len(edges))


def in_period(value: Any, period: DateRange, zone: ZoneInfo) -> ColumnElement[bool]:
    """A timestamp inside the range, in school time."""
    start, end = period.bounds(zone)
    return and_(value >= start, value < end)
