"""Subject access deadlines (issue 15): a request due within 7 days, or overdue, is nudged
to the DSLs once a working day, in working time, naming only the request's number and the
days; never the pupil. End to end on both databases, through the job the scheduler runs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select

from store.models import SubjectAccessRequest
from store.subject_access import due_on
from testing.harness import Harness
from tests.handlers.web.test_subject_access import NARRATIVE, REQUESTER
from tests.scheduler.test_referrals import a_working_tuesday
from tests.support.clock import WORKING, at, move_clock
from tests.support.records import pupil_by_upn
from tests.support.school import DEPUTY, DSL, PUPIL_4B
from tests.support.slack import file_concern
from tests.support.web import People


def nudges(school: Harness, user_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in school.standin.messages_for_user(user_id)
        if m.get("text", "").startswith("Subject access request")
    ]


async def check(school: Harness) -> int:
    nudged = await school.server.sar_job.run()
    await school.delivered()
    return nudged


def received_for(due: dt.date) -> dt.date:
    """A date of receipt whose one-month deadline is `due`."""
    return next(
        day
        for day in (due - dt.timedelta(days=n) for n in range(27, 40))
        if due_on(day, WORKING) == due
    )


async def test_a_request_near_its_deadline_is_nudged_once_a_working_day(school: Harness) -> None:
    tuesday = a_working_tuesday()
    friday = tuesday + dt.timedelta(days=3)
    move_clock(school, at(tuesday, 7))
    await file_concern(school, narrative=NARRATIVE)
    pupil = await pupil_by_upn(school, PUPIL_4B)
    people = People(school)
    async with people.signed_in(DSL) as dsl:
        await dsl.get(f"/pupils/{pupil.id}")
        status, _ = await dsl.post(
            f"/pupils/{pupil.id}/sar",
            {"received_on": received_for(friday).isoformat(), "requester": REQUESTER},
        )
        assert status == 200
        status, page = await dsl.get("/sar")
        assert "due in 3 days" in page  # the deadline on the list
    await school.delivered()
    # Before working time: nothing; at 10:00 the DSL, once that day.
    move_clock(school, at(tuesday, 7, 30))
    assert await check(school) == 0
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    [nudge] = nudges(school, DSL)
    assert nudge["text"] == "Subject access request #1 due in 3 days."
    assert not nudges(school, DEPUTY)  # the DSLs, when there are any
    move_clock(school, at(tuesday, 15))
    assert await check(school) == 0
    # The next working day, again; then overdue the next week.
    move_clock(school, at(tuesday + dt.timedelta(days=1), 10))
    assert await check(school) == 1
    assert nudges(school, DSL)[-1]["text"] == "Subject access request #1 due in 2 days."
    # Saturday is not a working day: no nudge.
    move_clock(school, at(tuesday + dt.timedelta(days=4), 10))
    assert await check(school) == 0
    move_clock(school, at(tuesday + dt.timedelta(days=6), 10))  # Monday
    assert await check(school) == 1
    assert nudges(school, DSL)[-1]["text"] == "Subject access request #1 overdue by 3 days."
    # Completed: no more nudges.
    move_clock(school, at(tuesday + dt.timedelta(days=7), 9, 30))
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/sar/1")
        status, _ = await dsl.post("/sar/1/complete")
        assert status == 200
    move_clock(school, at(tuesday + dt.timedelta(days=7), 10))
    assert await check(school) == 0
    assert len(nudges(school, DSL)) == 3
    # Nothing about the pupil, nor who asked, in any Slack call.
    traffic = json.dumps([c.params for c in school.standin.calls])
    for secret in (pupil.forename, pupil.surname, "Osian", "Larkham", "Dunmore", "lunch"):
        assert secret not in traffic


async def test_a_request_far_from_its_deadline_is_not_nudged(school: Harness) -> None:
    tuesday = a_working_tuesday()
    move_clock(school, at(tuesday, 9))
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with People(school).signed_in(DSL) as dsl:
        await dsl.get(f"/pupils/{pupil.id}")
        status, _ = await dsl.post(
            f"/pupils/{pupil.id}/sar",
            {"received_on": tuesday.isoformat(), "requester": REQUESTER},
        )
        assert status == 200
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 0
    async with school.server.factory() as db:
        request = await db.scalar(select(SubjectAccessRequest))
    assert request is not None and request.last_nudged_on is None
    assert request.due_on == due_on(tuesday, WORKING)
