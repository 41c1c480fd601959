"""The overdue check shared by referrals, LADO consultations, tasks and subject access
deadlines: once a working day, in working time, claim the rows past due that are neither
snoozed (for a kind that can be) nor nudged today, and nudge each (`Nudger`).

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas share the work; each row's
`last_nudged_on` makes it once a working day. What a nudge writes (the DMs into the
outbox, a history row) is the `Nudger`'s, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import utcnow
from store.workdays import WorkingTime
from store.workspaces import in_school

log = structlog.get_logger(__name__)

Row = TypeVar("Row")
Plan = TypeVar("Plan")


@dataclass(frozen=True)
class NudgeDay:
    """When a check runs: the moment, its working day, the school's working time."""

    now: dt.datetime
    today: dt.date
    working: WorkingTime


class Nudger(Generic[Row, Plan]):
    """One kind of overdue row. `model` has `id`, `workspace_id` and `last_nudged_on`, and
    `snoozed_until` if its rows can be snoozed."""

    model: Any
    failed_event: str  # logged when `plan` fails (the row waits for the next check)...
    row_name: str  # ...with the row's id under this name

    def due(self, day: NudgeDay) -> Sequence[ColumnElement[bool]]:
        """The conditions of a row past due (besides snoozed and nudged today)."""
        raise NotImplementedError

    def order(self) -> Sequence[Any]:
        """Which rows are claimed first."""
        raise NotImplementedError

    async def prepare(self, session: AsyncSession, rows: Sequence[Row], day: NudgeDay) -> None:
        """Look up what every claimed row needs at once (none by default)."""

    async def plan(self, session: AsyncSession, row: Row, day: NudgeDay) -> Plan | None:
        """Who is told and what; None, or an error (logged), skips the row."""
        raise NotImplementedError

    def send(self, session: AsyncSession, row: Row, day: NudgeDay, plan: Plan) -> None:
        """Write the nudge (the outbox rows, any history)."""
        raise NotImplementedError


async def nudge_due(
    session: AsyncSession,
    nudger: Nudger[Row, Plan],
    *,
    working: WorkingTime,
    now: dt.datetime | None = None,
    limit: int,
    workspace_id: int | None = None,
) -> int:
    """Nudge up to `limit` rows of `nudger` past due, not snoozed and not yet nudged this
    working day (of one school's, `workspace_id`, or every school's); only in working time.
    Returns how many were nudged."""
    now = now or utcnow()
    if not working.is_working_time(now):
        return 0
    day = NudgeDay(now=now, today=working.working_day_of(now), working=working)
    model = nudger.model
    snoozed = getattr(model, "snoozed_until", None)
    not_snoozed = [] if snoozed is None else [or_(snoozed.is_(None), snoozed <= now)]
    claimed: list[Row] = list(
        (
            await session.scalars(
                select(model)
                .where(
                    *nudger.due(day),
                    *not_snoozed,
                    or_(model.last_nudged_on.is_(None), model.last_nudged_on < day.today),
                    *in_school(model.workspace_id, workspace_id),
                )
                .order_by(*nudger.order())
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not claimed:
        return 0
    await nudger.prepare(session, claimed, day)
    nudged = 0
    for row in claimed:
        try:
            plan = await nudger.plan(session, row, day)
        except Exception:
            log.exception(nudger.failed_event, **{nudger.row_name: getattr(row, "id", None)})
            continue
        if plan is None:
            continue
        row.last_nudged_on = day.today  # type: ignore[attr-defined]
        nudger.send(session, row, day, plan)
        nudged += 1
    await session.flush()
    return nudged
