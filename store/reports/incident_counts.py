"""Incidents counted for a date range: by current category and month, and by the main
pupil's year group."""

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import (
    and_,
    func,
    not_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store import pupil_corrections
from store.access import in_view
from store.models import (
    Incident,
    IncidentAction,
    IncidentCategory,
    Pupil,
    Staff,
)
from store.reports.periods import DateRange
from store.reports.sql import in_period, month_bucket, plan_for_these_dates, recategorised

# -- incidents by category and month -------------------------------------------------------


@dataclass(frozen=True)
class CategoryRow:
    name: str
    counts: list[int]  # per month of the range
    total: int


@dataclass(frozen=True)
class CategoryMonths:
    """How many incidents of each category, month by month (current categories).

    An incident with two categories counts once in each; `incidents` counts each once.
    """

    months: list[dt.date]
    rows: list[CategoryRow]  # most frequent first
    incidents: list[int]  # incidents per month
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


async def incidents_by_category(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    zone: ZoneInfo,
    viewer: Staff | None = None,
) -> CategoryMonths:
    """Incidents that happened in the range, by current category and month.

    An incident's category is its latest re-categorisation, else what it was filed with
    (as `store.actions.current_categories`), worked out in three set-based queries.
    """
    await plan_for_these_dates(session)
    months = period.months
    bucket = month_bucket(Incident.happened_at, period, zone)
    scope = and_(
        Incident.workspace_id == workspace_id,
        in_period(Incident.happened_at, period, zone),
        in_view(Incident.id, viewer),
    )
    per_month = [0] * len(months)
    for index, count in await session.execute(
        select(bucket.label("m"), func.count()).select_from(Incident).where(scope).group_by("m")
    ):
        per_month[int(index)] = int(count)

    counts: dict[str, list[int]] = {}

    def add(name: str, index: int, count: int = 1) -> None:
        counts.setdefault(name, [0] * len(months))[index] += count

    changed = (
        select(IncidentAction.id)
        .where(IncidentAction.incident_id == Incident.id, recategorised())
        .exists()
    )
    # Incidents never re-categorised: their categories as filed, counted in SQL.
    for index, name, count in await session.execute(
        select(bucket.label("m"), IncidentCategory.name, func.count())
        .select_from(Incident)
        .join(IncidentCategory, IncidentCategory.incident_id == Incident.id)
        .where(scope, not_(changed))
        .group_by("m", IncidentCategory.name)
    ):
        add(name, int(index), int(count))
    # The few that were: each one's latest list (rows come oldest action first).
    latest: dict[int, tuple[int, list[str]]] = {}
    for incident_id, index, categories in await session.execute(
        select(Incident.id, bucket, IncidentAction.categories)
        .select_from(Incident)
        .join(IncidentAction, IncidentAction.incident_id == Incident.id)
        .where(scope, recategorised())
        .order_by(Incident.id, IncidentAction.id)
    ):
        if categories:
            latest[incident_id] = (int(index), list(categories))
    for index, categories in latest.values():
        for name in dict.fromkeys(categories):
            add(name, index)

    rows = [CategoryRow(name, per, sum(per)) for name, per in counts.items()]
    rows.sort(key=lambda r: (-r.total, r.name.casefold()))
    return CategoryMonths(months=months, rows=rows, incidents=per_month, total=sum(per_month))


# -- year groups ----------------------------------------------------------------------------


@dataclass(frozen=True)
class YearGroupRow:
    year_group: str
    incidents: int


_YEAR_ORDER = ["nursery", "n", "n1", "n2", "reception", "r", "yr"]


def year_group_order(name: str) -> tuple[int, int, str]:
    """Nursery, Reception, then Year 1 to 13 in number order, then anything else."""
    key = name.strip().casefold()
    if key in _YEAR_ORDER:
        return (0, _YEAR_ORDER.index(key), key)
    found = re.fullmatch(r"(?:year\s*|y)?(\d{1,2})", key)
    if found:
        return (1, int(found[1]), key)
    return (2, 0, key)


async def year_groups(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    zone: ZoneInfo,
    viewer: Staff | None = None,
) -> list[YearGroupRow]:
    """Incidents that happened in the range, by the year group of their main pupil (after
    any "filed against the wrong pupil" correction)."""
    await plan_for_these_dates(session)
    main = pupil_corrections.main_pupils()
    rows = await session.execute(
        select(Pupil.year_group, func.count())
        .select_from(Incident)
        .join(main, main.c.incident_id == Incident.id)
        .join(Pupil, Pupil.id == main.c.pupil_id)
        .where(
            Incident.workspace_id == workspace_id,
            in_period(Incident.happened_at, period, zone),
            in_view(Incident.id, viewer),
        )
        .group_by(Pupil.year_group)
    )
    found = [YearGroupRow(str(name), int(count)) for name, count in rows]
    return sorted(found, key=lambda r: year_group_order(r.year_group))
