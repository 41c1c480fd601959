"""Alerts not read within one working day: per person, and added up."""

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    column,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store.access import in_view
from store.db import is_postgresql
from store.models import (
    Alert,
    ReadReceipt,
    Staff,
    UTCDateTime,
)
from store.reports.periods import DateRange
from store.reports.sql import epoch_seconds, plan_for_these_dates
from store.workdays import WorkingTime


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
    viewer: Staff | None = None,
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
                in_view(Alert.incident_id, viewer),
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


async def unread_by_person(
    session: AsyncSession,
    *,
    workspace_id: int,
    period: DateRange,
    working: WorkingTime,
    viewer: Staff | None = None,
) -> dict[int, int]:
    """Per recipient, the alerts sent in the range still unread now. Once every deadline
    of the range has passed (`store.reports.cache.ended`) these are all late, and a read
    changes only this column of `late_alerts`: what its kept rows are brought up to date
    with, without the deadlines' query."""
    start, end = period.bounds(working.zone)
    rows = await session.execute(
        select(Alert.recipient_id, func.count())
        .outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
        .where(
            Alert.workspace_id == workspace_id,
            Alert.created_at >= start,
            Alert.created_at < end,
            ReadReceipt.alert_id.is_(None),
            in_view(Alert.incident_id, viewer),
        )
        .group_by(Alert.recipient_id)
    )
    return {int(staff_id): int(count) for staff_id, count in rows}


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
    viewer: Staff | None = None,
) -> AlertTotals:
    """The counts of `late_alerts` added up, plus every alert sent in the range."""
    await plan_for_these_dates(session)
    start, end = period.bounds(working.zone)
    sent = await session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(
            Alert.workspace_id == workspace_id,
            Alert.created_at >= start,
            Alert.created_at < end,
            in_view(Alert.incident_id, viewer),
        )
    )
    rows = await late_alerts(
        session, workspace_id=workspace_id, period=period, working=working, now=now, viewer=viewer
    )
    return AlertTotals(int(sent or 0), sum(r.late for r in rows), sum(r.unread for r in rows))
