"""Tasks from Slack and the web view: Done, Snooze, and "My tasks" (`store.tasks`).

Each step writes its audit rows; a refusal changes nothing but the audit log. Done updates
the assignee's DM through the outbox (from Slack: the message pressed; from the web view:
the DM as sent, once it was).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, incidents, messages, outbox, tasks
from store.flows import Pressed, Setup, Visit
from store.models import IncidentAction, Task
from store.tasks import InvalidTask, TaskRow


@dataclass(frozen=True)
class TaskChange:
    """A task marked done or snoozed (`task`), or refused (None) with why."""

    task: Task | None
    reason: str = ""


async def _update_dm(
    session: AsyncSession,
    *,
    task: Task,
    setup: Setup,
    message: tuple[str, str] | None,
    now: dt.datetime,
    snoozed: bool = False,
) -> None:
    """Replace the pressed (or sent) message with its done or snoozed version."""
    if message is None:
        return
    channel, ts = message
    number = await incidents.number_of(session, incident_id=task.incident_id) or 0
    if snoozed:
        payload = messages.task_nudge(
            task_id=task.id,
            number=number,
            overdue_days=tasks.overdue_days(
                setup.school.working_time,
                task.due_on,
                tasks.today_for(setup.school.working_time, now),
            ),
            public_url=setup.public_url,
            snoozed_until=task.snoozed_until,
        )
    else:
        action = await session.get(IncidentAction, task.action_id)
        author = action.author.slack_user_id if action is not None else None
        payload = messages.task(
            task_id=task.id,
            number=number,
            author_slack_id=author,
            due_on=task.due_on,
            public_url=setup.public_url,
            done_at=task.done_at,
        )
    outbox.enqueue(
        session,
        workspace_id=task.workspace_id,
        kind=outbox.MESSAGE_UPDATE,
        channel=channel,
        incident_id=task.incident_id,
        payload={**payload, "ts": ts},
        now=now,
    )


def _trail(session: AsyncSession, pressed: Pressed) -> audit.Trail:
    return audit.Trail(
        session,
        actor=pressed.staff,
        ip=pressed.ip,
        now=pressed.now,
        workspace_id=pressed.workspace_id,
        actor_slack_id=pressed.slack_user_id,
    )


async def mark_done(session: AsyncSession, pressed: Pressed) -> TaskChange:
    """Mark a task (`pressed.row_id`) done (its assignee only), audited, and update the
    assignee's DM: the message pressed in Slack, else the DM as sent."""
    task_id, staff, now, message = pressed.row_id, pressed.staff, pressed.now, pressed.message
    trail = _trail(session, pressed)
    try:
        task = await tasks.mark_done(session, task_id=task_id, staff=staff, now=now)
    except InvalidTask as refused:
        detail = f"task {task_id}" if task_id is not None else "not a task"
        trail.add("task.done", audit.REFUSED, detail=detail)
        return TaskChange(None, refused.errors.get("task", ""))
    trail.add(
        "task.done", detail=f"task {task.id}; action {task.action_id}", incident_id=task.incident_id
    )
    if message is None:
        message = await tasks.dm_message(session, task=task)
    await _update_dm(session, task=task, setup=pressed.setup, message=message, now=now)
    return TaskChange(task)


async def snooze(session: AsyncSession, pressed: Pressed) -> TaskChange:
    """Hold an overdue task's (`pressed.row_id`) nudges for one working day, audited; the
    nudge pressed is updated."""
    task_id, staff, now, setup = pressed.row_id, pressed.staff, pressed.now, pressed.setup
    trail = _trail(session, pressed)
    try:
        task = await tasks.snooze(
            session, task_id=task_id, staff=staff, working=setup.school.working_time, now=now
        )
    except InvalidTask as refused:
        detail = f"task {task_id}" if task_id is not None else "not a task"
        trail.add("task.snooze", audit.REFUSED, detail=detail)
        return TaskChange(None, refused.errors.get("task", ""))
    until = task.snoozed_until.isoformat(timespec="minutes") if task.snoozed_until else ""
    trail.add("task.snooze", detail=f"task {task.id}; until {until}", incident_id=task.incident_id)
    await _update_dm(
        session, task=task, setup=setup, message=pressed.message, now=now, snoozed=True
    )
    return TaskChange(task)


async def my_tasks(session: AsyncSession, *, visit: Visit) -> list[TaskRow]:
    """The visitor's open tasks, oldest due first, audited."""
    today = tasks.today_for(visit.setup.school.working_time, visit.now)
    rows = await tasks.open_tasks(session, staff=visit.staff, today=today)
    await visit.trail(session).write("tasks.view", detail=f"{len(rows)} open")
    return rows
