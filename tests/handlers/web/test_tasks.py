"""Tasks (issue 13): an action assigned to someone with a due date, end to end.

People sign in to the web view and add an action with "Assign to" and "Due"; the
assignee's DM is asserted on the Slack stand-in, Done is pressed with signed Slack
requests, "My tasks" is read and used over HTTP, and the rows are read from the database.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select

from store.messages import OPEN_ACTION, TASK_DONE_ACTION, TASK_NOT_YOURS
from store.models import Alert, Task
from testing.harness import Harness
from tests.handlers.test_allegations import allege
from tests.support.clock import LONDON
from tests.support.records import audit_events, pupil_with_upn, staff_member
from tests.support.school import CLASS_TEACHER, DSL, HEAD, NARRATIVE, PUPIL_4B, TA, TEACHER
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

TASK_TEXT = "Ring the grandmother about the GP appointment and note what she says."


def today() -> dt.date:
    return dt.datetime.now(LONDON).date()


def task_dms(school: Harness, user_id: str) -> list[dict[str, Any]]:
    """The task DMs `user_id` has, oldest first."""
    return [
        m
        for m in school.standin.messages_for_user(user_id)
        if m.get("text", "").startswith("Task on concern")
    ]


async def tasks_rows(school: Harness) -> list[Task]:
    async with school.server.factory() as db:
        return list((await db.scalars(select(Task).order_by(Task.id))).all())


async def assign(
    school: Harness, author: str, assignee: str, *, due: dt.date | str | None = None
) -> tuple[int, str]:
    """`author` adds an action on concern #1 that is a task for `assignee`."""
    assignee_id = (await staff_member(school, assignee)).id
    async with signed_in(school, author, remember=True) as user:
        await user.get("/incidents/1")
        return await user.post(
            "/incidents/1/actions",
            {"text": TASK_TEXT, "assignee": str(assignee_id), "due": str(due or today())},
        )


async def test_a_task_dms_its_assignee_redacted_with_open_and_done(school: Harness) -> None:
    await file_concern(school)  # TEACHER, about the 4B pupil
    due = today() + dt.timedelta(days=3)
    status, page = await assign(school, DSL, TA, due=due)
    assert status == 200
    # The incident page notes the task under the action.
    assert "Task for" in shown(page) and "not done yet" in shown(page)
    await school.delivered()
    [task] = await tasks_rows(school)
    assert task.due_on == due and task.done_at is None
    assert task.assignee_id == (await staff_member(school, TA)).id
    [dm] = task_dms(school, TA)
    assert dm["text"] == f"Task on concern #1 from <@{DSL}>, due {due:%a %d %b %Y}"
    blocks = json.dumps(dm["blocks"])
    assert TASK_DONE_ACTION in blocks and OPEN_ACTION in blocks
    # Nothing sensitive: no pupil name, no narrative, no task text, anywhere in Slack.
    async with school.server.factory() as db:
        pupil = await pupil_with_upn(school, db, PUPIL_4B)
    assert pupil is not None
    traffic = json.dumps([c.params for c in school.standin.calls])
    for secret in (pupil.forename, pupil.surname, NARRATIVE, TASK_TEXT, "grandmother"):
        assert secret not in traffic
    # The TA, who could not see the concern, now may (an alert, as "also alert" gives).
    async with school.server.factory() as db:
        alert = await db.scalar(select(Alert).where(Alert.recipient_id == task.assignee_id))
    assert alert is not None and alert.action_id == task.action_id
    async with signed_in(school, TA, remember=True) as ta:
        status, _ = await ta.get("/incidents/1")
        assert status == 200
    [added] = await audit_events(school, "task.add")
    assert added.outcome == "ok" and f"task {task.id}" in (added.detail or "")


async def test_done_from_slack_marks_it_done_and_updates_the_dm(school: Harness) -> None:
    await file_concern(school)
    await assign(school, DSL, TA)
    await school.delivered()
    [dm] = task_dms(school, TA)
    channel = school.standin.dm_channel_for(TA)
    response = await school.slack.click_button(TA, dm, TASK_DONE_ACTION, channel_id=channel)
    assert response.status == 200
    await school.server.tasks.idle()
    await school.delivered()
    [task] = await tasks_rows(school)
    assert task.done_at is not None and task.done_by_id == task.assignee_id
    updates = school.standin.calls_to("chat.update", ok_only=True)
    assert [(u.params["channel"], u.params["ts"]) for u in updates] == [(channel, dm["ts"])]
    updated = json.dumps(school.standin.messages[(channel, dm["ts"])]["blocks"])
    assert "Done" in updated and TASK_DONE_ACTION not in updated
    [done] = await audit_events(school, "task.done")
    assert (done.outcome, done.actor_slack_id) == ("ok", TA)


async def test_someone_else_pressing_done_is_refused(school: Harness) -> None:
    await file_concern(school)
    await assign(school, DSL, TA)
    await school.delivered()
    [dm] = task_dms(school, TA)
    [task] = await tasks_rows(school)
    # The class teacher sends the button's payload (forged: the DM was never theirs).
    response = await school.slack.block_actions(
        CLASS_TEACHER,
        action_id=TASK_DONE_ACTION,
        value=str(task.id),
        message=dm,
        channel_id=school.standin.dm_channel_for(CLASS_TEACHER),
    )
    assert response.status == 200
    await school.server.tasks.idle()
    await school.delivered()
    [task] = await tasks_rows(school)
    assert task.done_at is None
    assert school.standin.calls_to("chat.update") == []
    [ephemeral] = [e for e in school.standin.ephemerals if e["user"] == CLASS_TEACHER]
    assert ephemeral["text"] == TASK_NOT_YOURS
    refused = await audit_events(school, "task.done")
    assert [(e.outcome, e.actor_slack_id) for e in refused] == [("refused", CLASS_TEACHER)]


async def test_my_tasks_lists_them_and_marks_one_done(school: Harness) -> None:
    await file_concern(school)
    later, sooner = today() + dt.timedelta(days=5), today() + dt.timedelta(days=1)
    await assign(school, DSL, TA, due=later)
    await assign(school, DSL, TA, due=sooner)
    await school.delivered()
    first, second = await tasks_rows(school)
    async with signed_in(school, TA, remember=True) as ta:
        status, page = await ta.get("/tasks")
        assert status == 200
        text = shown(page)
        # Oldest due first, with a link to the concern; no task text.
        assert text.index(f"task-{second.id}") < text.index(f"task-{first.id}")
        assert 'href="/incidents/1"' in page and TASK_TEXT not in text
        # Without the CSRF token: refused, nothing done.
        status, _ = await ta.post(f"/tasks/{second.id}/done", {}, csrf=False)
        assert status == 403
        await ta.get("/tasks")
        status, page = await ta.post(f"/tasks/{second.id}/done", {})
        assert status == 200 and ta.last_url.endswith(f"/tasks?done={second.id}")
        assert f"task-{second.id}" not in page and f"task-{first.id}" in page
    first, second = await tasks_rows(school)
    assert second.done_at is not None and first.done_at is None
    # The DM sent earlier is updated to say so.
    await school.delivered()
    channel = school.standin.dm_channel_for(TA)
    updates = school.standin.calls_to("chat.update", ok_only=True)
    assert len(updates) == 1 and updates[0].params["channel"] == channel
    # Someone else cannot mark it done: the one 404.
    async with signed_in(school, DSL, remember=True) as dsl:
        await dsl.get("/tasks")
        status, _ = await dsl.post(f"/tasks/{first.id}/done", {})
        assert status == 404
    assert (await tasks_rows(school))[0].done_at is None


async def test_the_app_home_counts_open_tasks_without_text(school: Harness) -> None:
    await file_concern(school)
    await assign(school, DSL, TA)
    await school.delivered()
    response = await school.slack.event(
        {"type": "app_home_opened", "user": TA, "channel": "D0HOME", "tab": "home"}
    )
    assert response.status == 200
    await school.standin.wait_for_calls("views.publish", 1)
    view = json.dumps(school.standin.home_views[TA]["blocks"])
    assert "You have 1 open task" in view and "/tasks" in view
    assert TASK_TEXT not in view


async def test_the_due_date_and_assignee_are_checked(school: Harness) -> None:
    await file_concern(school)
    status, page = await assign(school, DSL, TA, due=today() - dt.timedelta(days=1))
    assert status == 400 and "The due date cannot be in the past." in shown(page)
    status, page = await assign(school, DSL, TA, due="next week")
    assert status == 400 and "Give the due date as a date" in shown(page)
    assert await tasks_rows(school) == []
    assert task_dms(school, TA) == []


async def test_a_task_on_an_allegation_cannot_go_to_the_adult_named(school: Harness) -> None:
    await allege(school, TA, CLASS_TEACHER)  # the head manages it
    await school.delivered()
    status, page = await assign(school, HEAD, CLASS_TEACHER)
    assert status == 400
    assert "cannot be assigned to the person it is about" in shown(page)
    assert await tasks_rows(school) == []
    assert task_dms(school, CLASS_TEACHER) == []
    # To someone else it may go.
    status, _ = await assign(school, HEAD, TEACHER)
    assert status == 200
    assert len(await tasks_rows(school)) == 1
