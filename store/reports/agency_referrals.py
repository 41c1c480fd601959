"""Referrals for the reports: every one still open with its age, and counts by agency."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import (
    and_,
    case,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store.access import in_view
from store.crypto import bind, open_loaded
from store.models import (
    Incident,
    Referral,
    Staff,
)
from store.referrals import AWAITING, RESPONDED
from store.reports.periods import DateRange
from store.reports.sql import in_period, plan_for_these_dates
from store.workdays import WorkingTime


class WorkingDayCounter:
    """`WorkingTime.working_days_between` for many instants at once, by dates.

    Counts working days over a span of dates once (a running total), so each question is
    a subtraction, however old the referral.
    """

    def __init__(self, working: WorkingTime, instants: Iterable[dt.datetime]) -> None:
        self.working = working
        days = [working.working_day_of(i) for i in instants]
        self.first = min(days) if days else dt.date.today()
        last = max(days) if days else self.first
        self.totals = [0]
        day = self.first
        while day < last:
            day += dt.timedelta(days=1)
            self.totals.append(self.totals[-1] + working.is_working_day(day))

    def between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Working days W with local date of start < W <= local date of end."""
        a = (self.working.working_day_of(start) - self.first).days
        b = (self.working.working_day_of(end) - self.first).days
        if b <= a:
            return 0
        return self.totals[b] - self.totals[a]


@dataclass(frozen=True)
class OpenReferral:
    """A referral not yet closed, with its age; no pupil, no narrative."""

    id: int
    number: int  # the incident's
    agency: str
    reference: str | None
    status: str  # awaiting, responded
    referred_at: dt.datetime
    due_at: dt.datetime
    age_days: int  # calendar days since the referral
    age_working_days: int
    overdue: bool  # no response and past due
    overdue_days: int  # working days overdue (0 on the due day)


async def open_referrals(
    session: AsyncSession,
    *,
    workspace_id: int,
    working: WorkingTime,
    now: dt.datetime,
    viewer: Staff | None = None,
) -> list[OpenReferral]:
    """Every referral still open now, whenever it was made: overdue first, oldest first."""
    await plan_for_these_dates(session)
    rows = (
        await session.execute(
            select(
                Referral.id,
                # A primary-key lookup per open referral, not a join over every incident.
                select(Incident.number)
                .where(Incident.id == Referral.incident_id)
                .scalar_subquery(),
                Referral.agency,
                Referral.reference_ct,
                Referral.status,
                Referral.referred_at,
                Referral.due_at,
            ).where(
                Referral.workspace_id == workspace_id,
                Referral.status.in_([AWAITING, RESPONDED]),
                in_view(Referral.incident_id, viewer),
            )
        )
    ).all()
    counter = WorkingDayCounter(
        working, [now, *(r.referred_at for r in rows), *(r.due_at for r in rows)]
    )
    found = []
    today = working.working_day_of(now)
    for rid, number, agency, reference, status, referred_at, due_at in rows:
        overdue = status == AWAITING and due_at <= now
        found.append(
            OpenReferral(
                id=rid,
                number=number,
                agency=agency,
                reference=(
                    None
                    if reference is None
                    else open_loaded(reference, bind(Referral.reference_ct, rid))
                ),
                status=status,
                referred_at=referred_at,
                due_at=due_at,
                age_days=max(0, (today - working.working_day_of(referred_at)).days),
                age_working_days=counter.between(referred_at, now),
                overdue=overdue,
                overdue_days=counter.between(due_at, now) if overdue else 0,
            )
        )
    found.sort(key=lambda r: (not r.overdue, -r.overdue_days, r.referred_at, r.id))
    return found


@dataclass(frozen=True)
class AgencyRow:
    agency: str
    made: int  # referrals made in the range
    open_now: int
    overdue_now: int


async def referrals_by_agency(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    zone: ZoneInfo,
    now: dt.datetime,
    viewer: Staff | None = None,
) -> list[AgencyRow]:
    """Per agency: referrals made in the range, and how many are open and overdue now."""
    await plan_for_these_dates(session)
    made = dict(
        (
            await session.execute(
                select(Referral.agency, func.count())
                .where(
                    Referral.workspace_id == workspace_id,
                    in_period(Referral.referred_at, period, zone),
                    in_view(Referral.incident_id, viewer),
                )
                .group_by(Referral.agency)
            )
        ).all()
    )
    overdue = and_(Referral.status == AWAITING, Referral.due_at <= now)
    still_open = {
        agency: (int(count), int(late or 0))
        for agency, count, late in await session.execute(
            select(Referral.agency, func.count(), func.sum(case((overdue, 1), else_=0)))
            .where(
                Referral.workspace_id == workspace_id,
                Referral.status.in_([AWAITING, RESPONDED]),
                in_view(Referral.incident_id, viewer),
            )
            .group_by(Referral.agency)
        )
    }
    agencies = sorted(set(made) | set(still_open), key=str.casefold)
    return [
        AgencyRow(
            agency=name,
            made=int(made.get(name, 0)),
            open_now=still_open.get(name, (0, 0))[0],
            overdue_now=still_open.get(name, (0, 0))[1],
        )
        for name in agencies
    ]
