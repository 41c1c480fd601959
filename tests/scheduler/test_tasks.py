"""Overdue tasks (issue 13): nudged to the assignee once a working day in working time,
escalating to the DSLs, with Snooze 1 working day; end to end on both databases.

The server's clock is moved to known school times (`tests.support.clock`) and the check
is run by calling the job the scheduler runs (`server.tasks_job.run()`). The task is set
through the web view's add-action form, as a person would.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select

from store.messages import TASK_DONE_ACTION, TASK_SNOOZE_ACTION
from store.models import Task
from testing.harness import Harness
from tests.scheduler.test_referrals import a_working_tuesday
from tests.support.clock import at, move_clock
from tests.support.records import audit_events, staff_member
from tests.support.school import DEPUTY, DSL, HEAD, TA
from tests.support.slack import file_concern
from tests.support.web import People

TASK_TEXT = "Check in with her at lunch and note how she seems."


def nudges(school: Harness, user_id: str) -> list[dict[str, Any]]:
    """The overdue-task DMs `user_id` has, oldest first."""
    return [m for m in school.standin.messages_for_user(user_id) if "on concern #1 is" in m["text"]]


async def check(school: Harness) -> int:
    nudged = await school.server.tasks_job.run()
    await school.delivered()
    return nudged


async def the_task(school: Harness) -> Task:
    async with school.server.factory() as db:
        task = await db.scalar(select(Task))
    assert task is not None
    return task


async def task_due_monday(school: Harness, monday: dt.date) -> None:
    """Monday 09:05: a concern, and the DSL gives the TA a task due that day."""
    move_clock(school, at(monday, 9, 5))
    await file_concern(school)
    ta = await staff_member(school, TA)
    async with People(school).signed_in(DSL) as dsl:
        await dsl.get("/incidents/1")
        status, _ = await dsl.post(
            "/incidents/1/actions",
            {"text": TASK_TEXT, "assignee": str(ta.id), "due": monday.isoformat()},
        )
        assert status == 200
    await school.delivered()


async def test_an_overdue_task_is_nudged_once_a_working_day_then_escalated(
    school: Harness,
) -> None:
    tuesday = a_working_tuesday()
    monday, wednesday = tuesday - dt.timedelta(days=1), tuesday + dt.timedelta(days=1)
    await task_due_monday(school, monday)
    # Due today: not overdue.
    move_clock(school, at(monday, 17))
    assert await check(school) == 0
    # Tuesday before working time: nothing; at 10:00 the assignee, and only them.
    move_clock(school, at(tuesday, 7, 30))
    assert await check(school) == 0
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    [nudge] = nudges(school, TA)
    assert nudge["text"] == (
        "A task you were given on concern #1 is 1 working day overdue and is not done."
    )
    blocks = json.dumps(nudge["blocks"])
    assert TASK_DONE_ACTION in blocks and TASK_SNOOZE_ACTION in blocks
    assert TASK_TEXT not in json.dumps([c.params for c in school.standin.calls])
    for other in (DSL, DEPUTY, HEAD):
        assert nudges(school, other) == []
    # Again the same working day: nothing more.
    for hour in (12, 17):
        move_clock(school, at(tuesday, hour, 30))
        assert await check(school) == 0
    assert len(nudges(school, TA)) == 1
    # Wednesday: 2 working days overdue, escalated to the DSL too (no Done for them).
    move_clock(school, at(wednesday, 9))
    assert await check(school) == 1
    assert len(nudges(school, TA)) == 2
    [escalated] = nudges(school, DSL)
    assert escalated["text"] == "A task on concern #1 is 2 working days overdue and is not done."
    assert TASK_DONE_ACTION not in json.dumps(escalated["blocks"])
    assert nudges(school, HEAD) == []
    # Done: no more nudges.
    channel = school.standin.dm_channel_for(TA)
    await school.slack.click_button(
        TA, nudges(school, TA)[-1], TASK_DONE_ACTION, channel_id=channel
    )
    await school.server.tasks.idle()
    assert (await the_task(school)).done_at is not None
    move_clock(school, at(wednesday + dt.timedelta(days=1), 10))
    assert await check(school) == 0


async def test_snooze_holds_a_tasks_nudges_for_one_working_day(school: Harness) -> None:
    tuesday = a_working_tuesday()
    monday, wednesday = tuesday - dt.timedelta(days=1), tuesday + dt.timedelta(days=1)
    await task_due_monday(school, monday)
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    [nudge] = nudges(school, TA)
    channel = school.standin.dm_channel_for(TA)
    move_clock(school, at(tuesday, 10, 15))
    response = await school.slack.click_button(TA, nudge, TASK_SNOOZE_ACTION, channel_id=channel)
    assert response.status == 200
    await school.server.tasks.idle()
    await school.delivered()
    task = await the_task(school)
    assert task.snoozed_until is not None
    assert at(wednesday, 10, 15) <= task.snoozed_until < at(wednesday, 10, 16)
    updated = json.dumps(school.standin.messages[(channel, nudge["ts"])]["blocks"])
    assert "Snoozed until" in updated and TASK_SNOOZE_ACTION not in updated
    # Wednesday before the snooze ends: nothing; after it, the day's nudge.
    move_clock(school, at(wednesday, 9))
    assert await check(school) == 0
    move_clock(school, at(wednesday, 10, 20))
    assert await check(school) == 1
    snoozes = await audit_events(school, "task.snooze")
    assert [(e.outcome, e.actor_slack_id) for e in snoozes] == [("ok", TA)]
