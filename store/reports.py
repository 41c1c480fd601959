"""Reports for the safeguarding team (DESIGN §7), counted in the database.

For a date range (by default this term): incidents by category and month, counts by the
main pupil's year group, alerts not read within one working day by person, and the
referrals still open with their ages. The governors' report is built from the same
counts and carries no names at all.

Nothing here decrypts anything or returns a pupil's name: these are counts, staff names
(for the alerts table) and referral facts. Each query is scoped to one workspace and
uses an index (migration 0004 adds the ones these need); none runs per incident.

Entry points (also used by the benchmark): `incidents_by_category`, `year_groups`,
`late_alerts`, `open_referrals`, `referrals_by_agency`, `governors_report`,
`term_report` (everything the reports page shows, in one call).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    not_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from store.db import bind_of, is_postgresql
from store.models import (
    Alert,
    Incident,
    IncidentAction,
    IncidentCategory,
    IncidentPupil,
    Pupil,
    ReadReceipt,
    Referral,
    Staff,
    UTCDateTime,
    Workspace,
)
from store.referrals import AWAITING, RESPONDED
from store.workdays import WorkingTime

LONGEST_RANGE_DAYS = 5 * 366  # a report covers at most about five school years


# The indexes these queries rely on are declared in `store.models` (migration 0004).

# -- date ranges and terms ---------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Whole days in the school's calendar, `first` to `last` inclusive."""

    first: dt.date
    last: dt.date
    name: str = ""  # e.g. "Autumn term 2025"

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the range ends ({self.last}) before it starts ({self.first})")

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """The range as UTC instants [start, end): local midnight to the midnight after."""
        return local_midnight(self.first, zone), local_midnight(
            self.last + dt.timedelta(days=1), zone
        )

    @property
    def months(self) -> list[dt.date]:
        """The first day of each calendar month the range touches."""
        months = []
        month = self.first.replace(day=1)
        while month <= self.last:
            months.append(month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return months

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def key(self) -> str:
        """The range as the audit log and file names give it: 2025-09-01..2025-12-31."""
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def describe(self) -> str:
        """The range as a person reads it: "1 Sep 2025 to 31 Dec 2025"."""
        return f"{_day(self.first)} to {_day(self.last)}"


def _day(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant a school day begins (local midnight)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def term_of(day: dt.date) -> DateRange:
    """The English school term a date falls in, by a simple fixed rule.

    Autumn 1 September to 31 December, spring 1 January to 31 March, summer 1 April to
    31 August (holidays included: a concern in the holidays belongs to the term before).
    """
    if day.month >= 9:
        return DateRange(
            dt.date(day.year, 9, 1), dt.date(day.year, 12, 31), f"Autumn term {day.year}"
        )
    if day.month <= 3:
        return DateRange(
            dt.date(day.year, 1, 1), dt.date(day.year, 3, 31), f"Spring term {day.year}"
        )
    return DateRange(dt.date(day.year, 4, 1), dt.date(day.year, 8, 31), f"Summer term {day.year}")


def previous_term(day: dt.date) -> DateRange:
    """The term before the one `day` falls in."""
    return term_of(term_of(day).first - dt.timedelta(days=1))


def school_year_of(day: dt.date) -> DateRange:
    """The school year (1 September to 31 August) a date falls in."""
    start = day.year if day.month >= 9 else day.year - 1
    return DateRange(
        dt.date(start, 9, 1),
        dt.date(start + 1, 8, 31),
        f"School year {start}/{(start + 1) % 100:02d}",
    )


async def school_name(session: AsyncSession, *, workspace_id: int) -> str:
    """The school's name (its Slack workspace's), for report and chronology headings."""
    return await session.scalar(select(Workspace.name).where(Workspace.id == workspace_id)) or ""


# -- portable SQL pieces ------------------------------------------------------------------


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


def _month_bucket(value: Any, period: DateRange, zone: ZoneInfo) -> ColumnElement[int]:
    """Which month of the range (0, 1, ...) a timestamp falls in, in school time."""
    months = period.months
    if len(months) == 1:
        return literal(0)
    edges = [local_midnight(m, zone) for m in months[1:]]
    return case(*((value < edge, index) for index, edge in enumerate(edges)), else_=len(edges))


def _in_period(value: Any, period: DateRange, zone: ZoneInfo) -> ColumnElement[bool]:
    start, end = period.bounds(zone)
    return and_(value >= start, value < end)


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
    session: AsyncSession, *, workspace_id: int, period: DateRange, zone: ZoneInfo
) -> CategoryMonths:
    """Incidents that happened in the range, by current category and month.

    An incident's category is its latest re-categorisation, else what it was filed with
    (as `store.actions.current_categories`), worked out in three set-based queries.
    """
    await plan_for_these_dates(session)
    months = period.months
    bucket = _month_bucket(Incident.happened_at, period, zone)
    scope = and_(
        Incident.workspace_id == workspace_id, _in_period(Incident.happened_at, period, zone)
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
    session: AsyncSession, *, workspace_id: int, period: DateRange, zone: ZoneInfo
) -> list[YearGroupRow]:
    """Incidents that happened in the range, by the year group of their main pupil."""
    await plan_for_these_dates(session)
    rows = await session.execute(
        select(Pupil.year_group, func.count())
        .select_from(Incident)
        .join(
            IncidentPupil,
            and_(IncidentPupil.incident_id == Incident.id, IncidentPupil.is_main.is_(True)),
        )
        .join(Pupil, Pupil.id == IncidentPupil.pupil_id)
        .where(
            Incident.workspace_id == workspace_id,
            _in_period(Incident.happened_at, period, zone),
        )
        .group_by(Pupil.year_group)
    )
    found = [YearGroupRow(str(name), int(count)) for name, count in rows]
    return sorted(found, key=lambda r: year_group_order(r.year_group))


# -- alerts not read within one working day -------------------------------------------------


@dataclass(frozen=True)
class DeadlineSegment:
    """A stretch of time [lo, hi) in which an alert sent at t is due to be read by
    `fixed` (outside working time), or by t + `shift` seconds (inside it)."""

    lo: dt.datetime
    hi: dt.datetime
    fixed: dt.datetime | None
    shift: float | None

    def deadline(self, sent: dt.datetime) -> dt.datetime:
        if self.fixed is not None:
            return self.fixed
        assert self.shift is not None
        return sent + dt.timedelta(seconds=self.shift)


def deadline_segments(
    working: WorkingTime, start: dt.datetime, end: dt.datetime
) -> list[DeadlineSegment]:
    """Pieces covering [start, end) for `WorkingTime.add_working_days(t, 1)`.

    Outside working time every t rolls forward to the same opening, so one deadline
    serves the whole gap; inside a working day the deadline is the same time of day on
    the next working day, a fixed shift from t. So the database can work out each alert's
    deadline with a join on these few rows (two a working day) instead of one by one.
    """
    segments: list[DeadlineSegment] = []
    zone = working.zone
    at = start.astimezone(dt.UTC)
    end = end.astimezone(dt.UTC)
    while at < end:
        begins = working.next_working_time(at)
        if begins > at:  # a gap: evenings, weekends, holidays, closures
            hi = min(begins, end)
            segments.append(DeadlineSegment(at, hi, working.add_working_days(begins, 1), None))
            at = begins
            continue
        day = working.working_day_of(at)
        closes = dt.datetime.combine(day, working.day_ends, tzinfo=zone).astimezone(dt.UTC)
        shift = (working.add_working_days(at, 1) - at).total_seconds()
        segments.append(DeadlineSegment(at, min(closes, end), None, shift))
        at = closes
    return segments


_SEGMENT_COLUMNS = (
    column("lo", UTCDateTime()),
    column("hi", UTCDateTime()),
    column("fixed", Float()),
    column("shift", Float()),
)


def _segments_table(session: AsyncSession, pieces: Sequence[DeadlineSegment]) -> Any:
    """The segments as a table in the query, sent as one JSON parameter.

    One parameter rather than four a row: the statement is the same whatever the range,
    so it is compiled once, and the database is not handed hundreds of values to plan.
    """
    if is_postgresql(session):
        rows: list[Any] = [
            {
                "lo": p.lo.isoformat(),
                "hi": p.hi.isoformat(),
                "fixed": p.fixed.timestamp() if p.fixed else None,
                "shift": p.shift,
            }
            for p in pieces
        ]
        sql = (
            "SELECT s.lo, s.hi, s.fixed, s.shift FROM json_to_recordset(CAST(:segments AS json))"
            " AS s(lo timestamptz, hi timestamptz, fixed float8, shift float8)"
        )
    else:  # SQLite keeps datetimes as naive UTC text in this form: compare like with like
        stamp = "%Y-%m-%d %H:%M:%S.%f"
        rows = [
            [
                p.lo.astimezone(dt.UTC).strftime(stamp),
                p.hi.astimezone(dt.UTC).strftime(stamp),
                p.fixed.timestamp() if p.fixed else None,
                p.shift,
            ]
            for p in pieces
        ]
        sql = (
            "SELECT json_extract(value, '$[0]') AS lo, json_extract(value, '$[1]') AS hi,"
            " json_extract(value, '$[2]') AS fixed, json_extract(value, '$[3]') AS shift"
            " FROM json_each(:segments)"
        )
    return (
        text(sql)
        .bindparams(segments=json.dumps(rows))
        .columns(*_SEGMENT_COLUMNS)
        .subquery("deadline_segments")
    )


@dataclass(frozen=True)
class LateAlertsRow:
    """One person's alerts in the range: how many were not read within a working day."""

    staff_id: int
    name: str
    alerts: int
    late: int  # read after the working day, or still unread after it
    unread: int  # of those, still unread now


async def _alert_id_bounds(
    session: AsyncSession, *, workspace_id: int, start: dt.datetime, end: dt.datetime
) -> tuple[int, int] | None:
    row = (
        await session.execute(
            select(func.min(Alert.id), func.max(Alert.id))
            .where(
                Alert.workspace_id == workspace_id,
                Alert.created_at >= start,
                Alert.created_at < end,
            )
            # Grouped, so PostgreSQL reads the range from the (workspace, time) index
            # rather than walking the primary key from either end looking for it.
            .group_by(Alert.workspace_id)
        )
    ).one_or_none()
    return None if row is None else (int(row[0]), int(row[1]))


async def late_alerts(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    working: WorkingTime,
    now: dt.datetime,
) -> list[LateAlertsRow]:
    """Per recipient, alerts sent in the range that were not read within one working day.

    An alert is late when it was read after `working.add_working_days(sent, 1)`, or is
    unread and that time has passed. Alerts still inside their working day are not late
    (yet). Only people with a late alert are listed, most late first. One query does the
    counting; `deadline_segments` gives it each alert's deadline.
    """
    await plan_for_these_dates(session)
    start, end = period.bounds(working.zone)
    end = min(end, max(now, start))
    bounds = await _alert_id_bounds(session, workspace_id=workspace_id, start=start, end=end)
    if bounds is None:
        return []
    pieces = deadline_segments(working, start, end)
    segment = _segments_table(session, pieces)
    now_epoch = literal(now.timestamp(), Float())
    deadline = func.coalesce(segment.c.fixed, epoch_seconds(Alert.created_at) + segment.c.shift)
    read_at = func.coalesce(epoch_seconds(ReadReceipt.read_at), now_epoch)
    late = case((read_at > deadline, 1), else_=0)
    unread = case((and_(ReadReceipt.alert_id.is_(None), now_epoch > deadline), 1), else_=0)
    counted = (
        select(
            Alert.recipient_id.label("staff_id"),
            func.count().label("alerts"),
            func.sum(late).label("late"),
            func.sum(unread).label("unread"),
        )
        .select_from(segment)
        .join(
            Alert,
            and_(
                Alert.workspace_id == workspace_id,
                Alert.created_at >= segment.c.lo,
                Alert.created_at < segment.c.hi,
                # Implied by the segments, but it tells the planner how few rows to expect.
                Alert.created_at >= start,
                Alert.created_at < end,
            ),
        )
        .outerjoin(
            ReadReceipt,
            and_(
                ReadReceipt.alert_id == Alert.id,
                # The receipts of these alerts lie in this id range: saying so lets the
                # database read just them instead of every receipt ever written.
                ReadReceipt.alert_id.between(*bounds),
            ),
        )
        .group_by(Alert.recipient_id)
        .subquery()
    )
    rows = await session.execute(
        select(counted, Staff.name)
        .join(Staff, Staff.id == counted.c.staff_id)
        .where(counted.c.late > 0)
        .order_by(counted.c.late.desc(), Staff.name, Staff.id)
    )
    return [
        LateAlertsRow(int(staff_id), name, int(alerts), int(late_count), int(unread_count))
        for staff_id, alerts, late_count, unread_count, name in rows
    ]


@dataclass(frozen=True)
class AlertTotals:
    """Alerts sent in the range, and how many were not read within a working day."""

    alerts: int
    late: int
    unread: int


async def alert_totals(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    working: WorkingTime,
    now: dt.datetime,
) -> AlertTotals:
    """The counts of `late_alerts` added up, plus every alert sent in the range."""
    await plan_for_these_dates(session)
    start, end = period.bounds(working.zone)
    sent = await session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(
            Alert.workspace_id == workspace_id, Alert.created_at >= start, Alert.created_at < end
        )
    )
    rows = await late_alerts(
        session, workspace_id=workspace_id, period=period, working=working, now=now
    )
    return AlertTotals(int(sent or 0), sum(r.late for r in rows), sum(r.unread for r in rows))


# -- referrals ------------------------------------------------------------------------------


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
    session: AsyncSession, *, workspace_id: int, working: WorkingTime, now: dt.datetime
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
                Referral.reference,
                Referral.status,
                Referral.referred_at,
                Referral.due_at,
            ).where(
                Referral.workspace_id == workspace_id, Referral.status.in_([AWAITING, RESPONDED])
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
                reference=reference,
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
) -> list[AgencyRow]:
    """Per agency: referrals made in the range, and how many are open and overdue now."""
    await plan_for_these_dates(session)
    made = dict(
        (
            await session.execute(
                select(Referral.agency, func.count())
                .where(
                    Referral.workspace_id == workspace_id,
                    _in_period(Referral.referred_at, period, zone),
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


# -- the reports ----------------------------------------------------------------------------


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
) -> TermReport:
    """The reports page: categories by month, year groups, late alerts, open referrals.

    On PostgreSQL the four parts are independent reads, so they run at once, each on its
    own connection: the page waits for the slowest, not for their sum.
    """
    zone = working.zone
    parts: tuple[Callable[[AsyncSession], Awaitable[Any]], ...] = (
        lambda s: incidents_by_category(s, workspace_id=workspace_id, period=period, zone=zone),
        lambda s: year_groups(s, workspace_id=workspace_id, period=period, zone=zone),
        lambda s: late_alerts(
            s, workspace_id=workspace_id, period=period, working=working, now=now
        ),
        lambda s: open_referrals(s, workspace_id=workspace_id, working=working, now=now),
    )
    if is_postgresql(session):

        async def on_its_own(part: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
            async with AsyncSession(bind_of(session)) as own, own.begin():
                return await part(own)

        results = await asyncio.gather(*(on_its_own(part) for part in parts))
    else:
        results = [await part(session) for part in parts]
    categories, groups, late, referrals_open = results
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
) -> GovernorsReport:
    """Counts for the governing body: by category and month, year group, agency; alerts."""
    zone = working.zone
    return GovernorsReport(
        period=period,
        categories=await incidents_by_category(
            session, workspace_id=workspace_id, period=period, zone=zone
        ),
        year_groups=await year_groups(session, workspace_id=workspace_id, period=period, zone=zone),
        agencies=await referrals_by_agency(
            session, workspace_id=workspace_id, period=period, zone=zone, now=now
        ),
        alerts=await alert_totals(
            session, workspace_id=workspace_id, period=period, working=working, now=now
        ),
    )
