"""Tasks (DESIGN §12): an action assigned to a member of staff, due on a date.

The action stays immutable; its task row records the assignee, the due date, and when
(and by whom) it was done. The assignee gets a redacted DM with Open and Done; an overdue
task is nudged to its assignee once a working day in working time, escalating to the DSLs
(an allegation's: its managers) after `[nudges] escalate_after_working_days`, with the
referral nudges' pattern (`store.referrals.nudge_overdue`): rows claimed with
`FOR UPDATE SKIP LOCKED`, `last_nudged_on` making it once a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import messages, outbox
from store.access import alert_refusal, in_view, is_keyholder
from store.actions import WITHDRAWN_BY_THE_TEAM, withdrawn_ids
from store.enums import AlertReason
from store.errors import FieldErrors
from store.models import (
    Alert,
    Incident,
    IncidentAction,
    IncidentAdult,
    OutboxMessage,
    Staff,
    Task,
)
from store.nudges import NudgeDay, Nudger, nudge_due
from store.school_config import SchoolConfig
from store.staff import active_staff_with_ids, nudge_recipients
from store.workdays import WorkingTime

log = structlog.get_logger(__name__)

NUDGE_BATCH = 200
DUE_FORMAT = "%Y-%m-%d"
NOT_THE_ADULT = "A concern about an adult cannot be assigned to the person it is about."


class InvalidTask(FieldErrors):
    """The task cannot be set or changed; `errors` maps each field to a message."""


@dataclass(frozen=True)
class TaskWanted:
    """A checked task, ready to record with its action."""

    assignee: Staff
    due_on: dt.date


def today_for(working: WorkingTime, now: dt.datetime) -> dt.date:
    """The school's local date now."""
    return working.working_day_of(now)


async def check_task(
    session: AsyncSession,
    *,
    incident: Incident,
    assignee_id: int | None,
    unreadable_assignee: bool,
    due_text: str,
    today: dt.date,
) -> TaskWanted | None:
    """The task asked for (None if none), or InvalidTask naming each wrong field.

    The assignee must be current staff and never the adult an allegation is about; they
    are alerted about the action like "also alert", which lets them see the concern.
    """
    due_text = due_text.strip()
    errors: dict[str, str] = {}
    if assignee_id is None and not unreadable_assignee and not due_text:
        return None
    assignee: Staff | None = None
    if unreadable_assignee:
        errors["assignee"] = "Choose a current member of staff."
    elif assignee_id is None:
        errors["assignee"] = "Choose who the task is for."
    else:
        found = await active_staff_with_ids(
            session, workspace_id=incident.workspace_id, ids=[assignee_id]
        )
        if not found:
            errors["assignee"] = "Choose a current member of staff."
        elif await alert_refusal(session, incident=incident, staff_ids=[assignee_id]):
            errors["assignee"] = NOT_THE_ADULT
        elif assignee_id in await withdrawn_ids(session, incident_id=incident.id):
            errors["assignee"] = WITHDRAWN_BY_THE_TEAM.format(name=found[0].name)
        else:
            assignee = found[0]
    due_on: dt.date | None = None
    if not due_text:
        errors["due"] = "Give the date the task is due."
    else:
        try:
            due_on = dt.datetime.strptime(due_text, DUE_FORMAT).date()
        except ValueError:
            errors["due"] = "Give the due date as a date (YYYY-MM-DD)."
        else:
            if due_on < today:
                errors["due"] = "The due date cannot be in the past."
    if errors or assignee is None or due_on is None:
        raise InvalidTask(errors)
    return TaskWanted(assignee, due_on)


async def record_task(
    session: AsyncSession,
    *,
    action: IncidentAction,
    incident: Incident,
    wanted: TaskWanted,
    author: Staff,
    public_url: str,
    now: dt.datetime,
) -> Task:
    """Write the task for `action` and queue the assignee's DM (if they are on Slack)."""
    task = Task(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        action_id=action.id,
        assignee_id=wanted.assignee.id,
        due_on=wanted.due_on,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    if wanted.assignee.slack_user_id:
        payload = messages.task(
            task_id=task.id,
            number=incident.number,
            author_slack_id=author.slack_user_id,
            due_on=task.due_on,
            public_url=public_url,
        )
        row = outbox.enqueue(
            session,
            workspace_id=incident.workspace_id,
            kind=outbox.TASK,
            channel=wanted.assignee.slack_user_id,
            incident_id=incident.id,
            payload=payload,
            now=now,
        )
        await session.flush()
        task.dm_outbox_id = row.id
    return task


async def get_task(session: AsyncSession, *, task_id: int, workspace_id: int) -> Task | None:
    """The task with this id in this workspace."""
    return await session.scalar(
        select(Task).where(Task.id == task_id, Task.workspace_id == workspace_id)
    )


async def mark_done(
    session: AsyncSession, *, task_id: int | None, staff: Staff | None, now: dt.datetime
) -> Task:
    """Mark the task done (only its assignee may); InvalidTask if not theirs. Marking a
    done task done again changes nothing."""
    if staff is None or task_id is None:
        raise InvalidTask({"task": "No such task."})
    task = await session.scalar(
        select(Task)
        .where(Task.id == task_id, Task.workspace_id == staff.workspace_id)
        .with_for_update()
    )
    if task is None or task.assignee_id != staff.id:
        raise InvalidTask({"task": "No such task."})
    if task.done_at is None:
        task.done_at = now
        task.done_by_id = staff.id
        await session.flush()
    return task


async def snooze(
    session: AsyncSession,
    *,
    task_id: int | None,
    staff: Staff | None,
    working: WorkingTime,
    now: dt.datetime,
) -> Task:
    """Hold an open task's nudges for one working day (its assignee, or a key-holder who
    may see the concern)."""
    if staff is None or task_id is None:
        raise InvalidTask({"task": "No such task."})
    task = await session.scalar(
        select(Task).where(
            Task.id == task_id,
            Task.workspace_id == staff.workspace_id,
            or_(Task.assignee_id == staff.id, in_view(Task.incident_id, staff)),
        )
    )
    if task is None or (task.assignee_id != staff.id and not is_keyholder(staff.role_set)):
        raise InvalidTask({"task": "No such task."})
    if task.done_at is not None:
        raise InvalidTask({"task": "That task is already done."})
    start = max(now, task.snoozed_until or now)
    task.snoozed_until = working.add_working_days(start, 1)
    await session.flush()
    return task


async def dm_message(session: AsyncSession, *, task: Task) -> tuple[str, str] | None:
    """The assignee's DM (channel, ts), if it was sent."""
    if task.dm_outbox_id is None:
        return None
    row = await session.get(OutboxMessage, task.dm_outbox_id)
    if row is None or not row.result_channel or not row.result_ts:
        return None
    return row.result_channel, row.result_ts


@dataclass(frozen=True)
class TaskRow:
    """An open task as "My tasks" lists it: no text, a number and a date."""

    task_id: int
    number: int
    due_on: dt.date
    overdue: bool
    set_by: str


async def open_tasks(
    session: AsyncSession, *, staff: Staff, today: dt.date, limit: int = 200
) -> list[TaskRow]:
    """`staff`'s open tasks on concerns they may see, oldest due first."""
    rows = await session.execute(
        select(Task.id, Incident.number, Task.due_on, Staff.name)
        .join(Incident, Incident.id == Task.incident_id)
        .join(IncidentAction, IncidentAction.id == Task.action_id)
        .join(Staff, Staff.id == IncidentAction.author_id)
        .where(
            Task.assignee_id == staff.id,
            Task.done_at.is_(None),
            in_view(Task.incident_id, staff),
        )
        .order_by(Task.due_on, Task.id)
        .limit(limit)
    )
    return [TaskRow(i, n, d, d < today, name) for i, n, d, name in rows]


async def open_count(session: AsyncSession, *, staff: Staff) -> int:
    """How many open tasks `staff` has on concerns they may see."""
    count = await session.scalar(
        select(func.count(Task.id)).where(
            Task.assignee_id == staff.id,
            Task.done_at.is_(None),
            in_view(Task.incident_id, staff),
        )
    )
    return count or 0


@dataclass(frozen=True)
class TaskNote:
    """What the incident page notes under an action that is a task."""

    task_id: int
    assignee_name: str
    due_on: dt.date
    done_at: dt.datetime | None
    done_by_name: str | None


async def notes_for_incident(session: AsyncSession, *, incident_id: int) -> dict[int, TaskNote]:
    """The incident's tasks by action id (the incident page's note on each)."""
    # By its actions: `tasks.action_id` is unique (indexed), `tasks.incident_id` is not.
    actions = select(IncidentAction.id).where(IncidentAction.incident_id == incident_id)
    found = list((await session.scalars(select(Task).where(Task.action_id.in_(actions)))).all())
    if not found:
        return {}
    ids = {t.assignee_id for t in found} | {t.done_by_id for t in found if t.done_by_id}
    names = dict(
        (await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids)))).all()
    )
    return {
        t.action_id: TaskNote(
            t.id,
            names.get(t.assignee_id, "?"),
            t.due_on,
            t.done_at,
            names.get(t.done_by_id) if t.done_by_id else None,
        )
        for t in found
    }


def overdue_days(working: WorkingTime, due_on: dt.date, today: dt.date) -> int:
    """Working days after the due date, up to today (0 on the due date)."""
    count, day = 0, due_on
    while day < today:
        day += dt.timedelta(days=1)
        count += working.is_working_day(day)
    return count


async def _escalation_recipients(
    session: AsyncSession, *, task: Task, dsls: list[Staff]
) -> list[Staff]:
    """Whom an escalation goes to besides the assignee: an allegation's managers (never
    the adult named), else the DSLs."""
    adult = await session.get(IncidentAdult, task.incident_id)
    if adult is None:
        return dsls
    managers = list(
        (
            await session.scalars(
                select(Staff)
                .join(Alert, Alert.recipient_id == Staff.id)
                .where(
                    Alert.incident_id == task.incident_id,
                    Alert.action_id.is_(None),
                    Alert.reason == AlertReason.ALLEGATIONS,
                    Staff.active.is_(True),
                )
            )
        ).all()
    )
    return [m for m in managers if m.id != adult.staff_id]


async def nudge_overdue(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime | None = None,
    limit: int = NUDGE_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Nudge up to `limit` overdue open tasks not yet nudged this working day; how many.

    Only in working time, through `store.nudges.nudge_due` (claimed `FOR UPDATE SKIP
    LOCKED` so replicas share the work; `last_nudged_on` makes it once a working day). The
    DMs go into the outbox in this transaction.
    """
    return await nudge_due(
        session,
        _OverdueTasks(config, public_url),
        working=config.working_time,
        now=now,
        limit=limit,
        workspace_id=workspace_id,
    )


@dataclass(frozen=True)
class _TaskNudge:
    overdue_days: int
    people: list[Staff]


class _OverdueTasks(Nudger[Task, _TaskNudge]):
    model = Task
    failed_event, row_name = "tasks.nudge_failed", "task"

    def __init__(self, config: SchoolConfig, public_url: str) -> None:
        self.config, self.public_url = config, public_url
        self.numbers: dict[int, int] = {}
        self.dsls: dict[int, list[Staff]] = {}

    def due(self, day: NudgeDay) -> Sequence[ColumnElement[bool]]:
        return (Task.done_at.is_(None), Task.due_on < day.today)

    def order(self) -> Sequence[Any]:
        return (Task.due_on, Task.id)

    async def prepare(self, session: AsyncSession, rows: Sequence[Task], day: NudgeDay) -> None:
        self.numbers = dict(
            (
                await session.execute(
                    select(Incident.id, Incident.number).where(
                        Incident.id.in_({t.incident_id for t in rows})
                    )
                )
            ).all()
        )

    async def plan(self, session: AsyncSession, row: Task, day: NudgeDay) -> _TaskNudge:
        days = overdue_days(day.working, row.due_on, day.today)
        escalate = days >= self.config.escalate_after_working_days
        assignee = await session.get(Staff, row.assignee_id)
        people = [assignee] if assignee is not None and assignee.active else []
        if escalate:
            if row.workspace_id not in self.dsls:
                self.dsls[row.workspace_id] = await nudge_recipients(
                    session, workspace_id=row.workspace_id, escalate=False
                )
            more = await _escalation_recipients(session, task=row, dsls=self.dsls[row.workspace_id])
            people += [p for p in more if p not in people]
        return _TaskNudge(days, people)

    def send(self, session: AsyncSession, row: Task, day: NudgeDay, plan: _TaskNudge) -> None:
        for person in plan.people:
            if not person.slack_user_id:
                continue
            payload = messages.task_nudge(
                task_id=row.id,
                number=self.numbers[row.incident_id],
                overdue_days=plan.overdue_days,
                public_url=self.public_url,
                escalated=person.id != row.assignee_id,
            )
            outbox.enqueue(
                session,
                workspace_id=row.workspace_id,
                kind=outbox.TASK,
                channel=person.slack_user_id,
                incident_id=row.incident_id,
                payload=payload,
                now=day.now,
            )
