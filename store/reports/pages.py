"""Each report page's figures in one call: the reports page (`term_report`) and the
governors' report (`governors_report`, counts only)."""

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store.db import bind_of, is_postgresql
from store.models import Staff
from store.reports import cache
from store.reports.agency_referrals import (
    AgencyRow,
    OpenReferral,
    open_referrals,
    referrals_by_agency,
)
from store.reports.incident_counts import (
    CategoryMonths,
    YearGroupRow,
    incidents_by_category,
    year_groups,
)
from store.reports.late_alerts import (
    AlertTotals,
    LateAlertsRow,
    alert_totals,
    late_alerts,
    unread_by_person,
)
from store.reports.periods import DateRange
from store.workdays import WorkingTime


@dataclass(frozen=True)
class TermReport:
    """Everything on the reports page for one range."""

    period: DateRange
    categories: CategoryMonths
    year_groups: list[YearGroupRow]
    late_alerts: list[LateAlertsRow]
    open_referrals: list[OpenReferral]

    @property
    def overdue_count(self) -> int:
        return sum(1 for r in self.open_referrals if r.overdue)


async def term_report(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    working: WorkingTime,
    now: dt.datetime,
    viewer: Staff | None = None,
) -> TermReport:
    """The reports page: categories by month, year groups, late alerts, open referrals.

    On PostgreSQL the four parts are independent reads, so they run at once, each on its
    own connection: the page waits for the slowest, not for their sum.

    A range that has ended keeps its counts in memory (`store.reports.cache`: per
    viewer, checked against the database's stamp on each request); the referrals still
    open are counted each time.
    """
    zone = working.zone
    parts: dict[str, Callable[[AsyncSession], Awaitable[Any]]] = {
        "categories": lambda s: incidents_by_category(
            s, workspace_id=workspace_id, period=period, zone=zone, viewer=viewer
        ),
        "year_groups": lambda s: year_groups(
            s, workspace_id=workspace_id, period=period, zone=zone, viewer=viewer
        ),
        "late_alerts": lambda s: late_alerts(
            s, workspace_id=workspace_id, period=period, working=working, now=now, viewer=viewer
        ),
        "open_referrals": lambda s: open_referrals(
            s, workspace_id=workspace_id, working=working, now=now, viewer=viewer
        ),
    }
    kept: dict[str, Any] = {}
    key: Hashable = None
    current: Hashable = None
    if (
        viewer is not None
        and cache.keeps_for(viewer)
        and cache.ended(period, working=working, now=now)
    ):
        key = ("term_report", workspace_id, viewer.id, period.first, period.last, working)
        current = await cache.stamp(
            session, workspace_id=workspace_id, period=period, working=working, viewer=viewer
        )
        kept = cache.get(session, key, current) or {}
    wanted = {name: part for name, part in parts.items() if name not in kept}
    if "late_alerts" in kept:  # kept, but reads since change who is still unread
        wanted["unread"] = lambda s: unread_by_person(
            s, workspace_id=workspace_id, period=period, working=working, viewer=viewer
        )
    # Counted afresh, on their own connections at once; what is left beside kept figures
    # (the referrals open now, who is still unread) is quick, read in this transaction.
    if is_postgresql(session) and len(wanted) > 1 and not kept:

        async def on_its_own(part: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
            async with AsyncSession(bind_of(session)) as own, own.begin():
                return await part(own)

        results = await asyncio.gather(*(on_its_own(part) for part in wanted.values()))
    else:
        results = [await part(session) for part in wanted.values()]
    found = {**kept, **dict(zip(wanted, results, strict=True))}
    if key is not None and not kept:
        cache.put(
            session,
            key,
            current,
            {name: found[name] for name in ("categories", "year_groups", "late_alerts")},
        )
    if "unread" in found:
        unread: dict[int, int] = found["unread"]
        found["late_alerts"] = [
            dataclasses.replace(row, unread=unread.get(row.staff_id, 0))
            for row in found["late_alerts"]
        ]
    categories, groups, late, referrals_open = (
        found["categories"],
        found["year_groups"],
        found["late_alerts"],
        found["open_referrals"],
    )
    return TermReport(
        period=period,
        categories=categories,
        year_groups=groups,
        late_alerts=late,
        open_referrals=referrals_open,
    )


@dataclass(frozen=True)
class GovernorsReport:
    """The governors' report: counts only. No pupil, no member of staff, no incident."""

    period: DateRange
    categories: CategoryMonths
    year_groups: list[YearGroupRow]
    agencies: list[AgencyRow]
    alerts: AlertTotals

    @property
    def referrals_made(self) -> int:
        return sum(a.made for a in self.agencies)

    @property
    def open_now(self) -> int:
        return sum(a.open_now for a in self.agencies)

    @property
    def overdue_now(self) -> int:
        return sum(a.overdue_now for a in self.agencies)


async def governors_report(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    working: WorkingTime,
    now: dt.datetime,
    viewer: Staff | None = None,
) -> GovernorsReport:
    """Counts for the governing body: by category and month, year group, agency; alerts."""
    zone = working.zone
    return GovernorsReport(
        period=period,
        categories=await incidents_by_category(
            session, workspace_id=workspace_id, period=period, zone=zone, viewer=viewer
        ),
        year_groups=await year_groups(
            session, workspace_id=workspace_id, period=period, zone=zone, viewer=viewer
        ),
        agencies=await referrals_by_agency(
            session, workspace_id=workspace_id, period=period, zone=zone, now=now, viewer=viewer
        ),
        alerts=await alert_totals(
            session,
            workspace_id=workspace_id,
            period=period,
            working=working,
            now=now,
            viewer=viewer,
        ),
    )
