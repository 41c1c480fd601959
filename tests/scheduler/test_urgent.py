"""Urgent concerns end to end: the DSL on duty told at once and named in the receipt, and
escalation every interval (rota, then head) until someone on the safeguarding team opens
the record, on both databases.

The server's clock is moved with `harness.clock_offset` (`move_clock`) and the urgent
check is run by calling the job the scheduler runs (`server.urgent_job.run()`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import holidays
import pytest
from sqlalchemy import select

from store.models import Alert, Staff, UrgentConcern, UrgentEscalation
from testing.harness import Harness
from testing.school import fictional_pupils
from tests.support.clock import LONDON, WORKING, at, move_clock
from tests.support.school import (
    CLASS_TEACHER,
    DEPUTY,
    DSL,
    HEAD,
    NARRATIVE,
    PASTORAL,
    PUPIL_4B,
    TA,
    TEACHER,
    TEACHER_3A,
    configured_school,
    name_of,
)
from tests.support.slack import file_concern
from tests.support.web import People

# Gareth Price covers nights (holidays too), Alys Hughes is the night backup, Ben Okafor
# covers school hours on weekdays; Dylan Evans (a teacher, not a key-holder) covers
# weekday lunchtimes, before Ben in the rota.
ROTA = """
[[on_call]]
staff = "d.evans@larkspur.example"
days = ["mon", "tue", "wed", "thu", "fri"]
from = "12:00"
to = "13:00"

[[on_call]]
staff = "g.price@larkspur.example"
from = "18:00"
to = "08:00"
holidays = true

[[on_call]]
staff = "a.hughes@larkspur.example"
from = "18:00"
to = "08:00"
holidays = true

[[on_call]]
staff = "b.okafor@larkspur.example"
days = ["mon", "tue", "wed", "thu", "fri"]
from = "08:00"
to = "18:00"

[urgent]
escalate_every_minutes = 10
"""

PUPIL = fictional_pupils(30)[4]  # PUPIL_4B
PUPIL_NAMES = (PUPIL.forename, PUPIL.surname)


@pytest.fixture
async def rota_school(db_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with configured_school(db_url, tmp_path, ROTA) as harness:
        yield harness


def a_working_tuesday() -> dt.date:
    """A Tuesday at least two days from now, in a week whose Monday to Friday all work."""
    day = dt.datetime.now(LONDON).date() + dt.timedelta(days=2)
    while day.weekday() != 1 or not all(
        WORKING.is_working_day(day + dt.timedelta(days=n)) for n in range(-1, 4)
    ):
        day += dt.timedelta(days=1)
    return day


def dms(school: Harness, user: str, prefix: str) -> list[dict[str, Any]]:
    return [m for m in school.standin.messages_for_user(user) if m["text"].startswith(prefix)]


def escalations(school: Harness, user: str) -> list[dict[str, Any]]:
    return dms(school, user, "URGENT: concern #")


async def check(school: Harness) -> None:
    await school.server.urgent_job.run()
    await school.delivered()


async def steps(school: Harness) -> list[tuple[int, int]]:
    async with school.server.factory() as db:
        rows = await db.execute(
            select(UrgentEscalation.step, UrgentEscalation.recipients).order_by(
                UrgentEscalation.step
            )
        )
        return [(step, count) for step, count in rows]


def assert_nothing_sensitive_sent(school: Harness) -> None:
    for method in ("chat.postMessage", "chat.update"):
        for call in school.standin.calls_to(method):
            sent = json.dumps(call.params)
            assert NARRATIVE not in sent and "hungry" not in sent
            for name in PUPIL_NAMES:
                assert name not in sent, (method, name)


async def test_an_urgent_concern_tells_the_one_on_duty_at_once_and_names_them(
    rota_school: Harness,
) -> None:
    school = rota_school
    tuesday = a_working_tuesday()
    move_clock(school, at(tuesday, 12, 15))  # lunchtime: Dylan Evans is on duty
    await file_concern(school, TEACHER, urgent=True)
    # Dylan teaches 3A, not the pupil's 4B, and is no key-holder: alerted only as on duty.
    [dm] = school.standin.messages_for_user(TEACHER_3A)
    assert dm["text"].startswith("URGENT: New concern #1 from <@U0TCHPATEL> · Behaviour")
    assert "a child may be at immediate risk" in dm["text"]
    # The normal recipients are told too, each once, and the alert says it is urgent.
    for person in (DSL, DEPUTY, HEAD, PASTORAL):
        [alert] = school.standin.messages_for_user(person)
        assert alert["text"].startswith("URGENT: ")
    # The reporter's receipt tells them to speak to Dylan now, by name.
    [receipt] = school.standin.messages_for_user(TEACHER)
    assert "Also speak to Dylan Evans (the DSL on duty) now" in receipt["text"]
    async with school.server.factory() as db:
        reasons = dict(
            (
                await db.execute(
                    select(Staff.slack_user_id, Alert.reason).join(
                        Staff, Staff.id == Alert.recipient_id
                    )
                )
            ).all()
        )
        urgent = await db.scalar(select(UrgentConcern))
    assert reasons[TEACHER_3A] == "urgent" and reasons[DSL] == "keyholder"
    assert urgent is not None and urgent.opened_at is None
    assert_nothing_sensitive_sent(school)


async def test_not_urgent_is_not_escalated_and_names_nobody(rota_school: Harness) -> None:
    school = rota_school
    tuesday = a_working_tuesday()
    move_clock(school, at(tuesday, 12, 15))
    await file_concern(school, TEACHER)
    assert school.standin.messages_for_user(TEACHER_3A) == []
    [receipt] = school.standin.messages_for_user(TEACHER)
    assert "speak to" not in receipt["text"] and not receipt["text"].startswith("URGENT")
    move_clock(school, at(tuesday, 14))
    await check(school)
    assert await steps(school) == []


async def test_at_night_unopened_it_escalates_rota_then_head_until_a_dsl_opens_it(
    rota_school: Harness,
) -> None:
    school = rota_school
    people = People(school)
    wednesday = a_working_tuesday() + dt.timedelta(days=1)
    filed = at(wednesday, 2)
    move_clock(school, filed)
    await file_concern(school, TEACHER, urgent=True)
    [receipt] = school.standin.messages_for_user(TEACHER)
    assert "Also speak to Gareth Price (the DSL on duty) now" in receipt["text"]
    assert name_of(PASTORAL) == "Gareth Price"

    # Before the first interval: nothing.
    move_clock(school, filed + dt.timedelta(minutes=9))
    await check(school)
    assert await steps(school) == []

    # 10 minutes: the on-duty person again, and the next on the rota (the night backup,
    # then the day cover). Not yet the head.
    move_clock(school, filed + dt.timedelta(minutes=10, seconds=5))
    await check(school)
    await check(school)  # the scheduler runs again: the step is not repeated
    for person in (PASTORAL, DSL, DEPUTY, TEACHER_3A):
        assert len(escalations(school, person)) == 1, person
    assert escalations(school, HEAD) == []
    assert escalations(school, TEACHER) == []  # never the reporter
    text = escalations(school, DSL)[0]["text"]
    assert "Nobody on the safeguarding team has opened it after 10 minutes" in text

    # 20 minutes: the head as well.
    move_clock(school, filed + dt.timedelta(minutes=20, seconds=5))
    await check(school)
    assert len(escalations(school, HEAD)) == 1
    assert len(escalations(school, PASTORAL)) == 2

    # The DSL taps Mark as read in Slack: acknowledged, not opened. It goes on.
    alert = next(m for m in school.standin.messages_for_user(DSL) if "New concern" in m["text"])
    channel = school.standin.dm_channel_for(DSL)
    response = await school.slack.click_button(DSL, alert, "alert_mark_read", channel_id=channel)
    assert response.status == 200
    await school.delivered()
    # The reporter opens their own record: not the safeguarding team. It goes on.
    async with people.signed_in(TEACHER) as teacher:
        status, _ = await teacher.get("/incidents/1")
        assert status == 200
    move_clock(school, filed + dt.timedelta(minutes=30, seconds=5))
    await check(school)
    assert len(escalations(school, HEAD)) == 2

    # A restart: the steps already sent are not sent again.
    await school.restart()
    await check(school)
    assert len(escalations(school, HEAD)) == 2

    # The DSL opens the record in the web view: the escalation stops.
    async with people.signed_in(DSL) as dsl:
        status, page = await dsl.get("/incidents/1")
        assert status == 200 and 'id="urgent"' in page
    for minutes in (40, 50, 90):
        move_clock(school, filed + dt.timedelta(minutes=minutes, seconds=5))
        await check(school)
    assert len(escalations(school, HEAD)) == 2
    assert [step for step, _ in await steps(school)] == [1, 2, 3]
    async with school.server.factory() as db:
        urgent = await db.scalar(select(UrgentConcern))
        dsl_id = await db.scalar(select(Staff.id).where(Staff.slack_user_id == DSL))
    assert urgent is not None and urgent.opened_by_id == dsl_id
    assert_nothing_sensitive_sent(school)


def next_weekday_bank_holiday() -> dt.date:
    """The next bank holiday in England that falls on a weekday, at least a day away."""
    today = dt.datetime.now(LONDON).date()
    found = holidays.country_holidays("GB", subdiv="ENG", years=[today.year, today.year + 1])
    return min(d for d in found if d > today + dt.timedelta(days=1) and d.weekday() < 5)


HOLIDAY_ROTA = """
[[on_call]]
staff = "b.okafor@larkspur.example"
days = ["mon", "tue", "wed", "thu", "fri"]
from = "08:00"
to = "18:00"
holidays = {covers}

[[on_call]]
staff = "g.price@larkspur.example"
from = "08:00"
to = "18:00"
holidays = "only"
"""


@pytest.mark.parametrize(("covers", "on_duty"), [("false", PASTORAL), ("true", DEPUTY)])
async def test_on_a_bank_holiday_the_entry_covering_holidays_is_on_duty(
    db_url: str, tmp_path: Path, covers: str, on_duty: str
) -> None:
    """Ben covers weekdays (holidays too, or not); Gareth covers holidays only."""
    toml = HOLIDAY_ROTA.format(covers=covers)
    async with configured_school(db_url, tmp_path, toml) as school:
        holiday = next_weekday_bank_holiday()
        move_clock(school, at(holiday, 10))
        await file_concern(school, TEACHER, urgent=True)
        [receipt] = school.standin.messages_for_user(TEACHER)
        assert f"Also speak to {name_of(on_duty)} (the DSL on duty) now" in receipt["text"]
        # The next working day, the weekday cover is on duty whatever `holidays` says.
        move_clock(school, at(WORKING.next_working_day(holiday), 10))
        await file_concern(school, TEACHER, urgent=True)
        receipt = school.standin.messages_for_user(TEACHER)[-1]
        assert f"Also speak to {name_of(DEPUTY)} (the DSL on duty) now" in receipt["text"]


async def test_the_modal_has_the_urgent_checkbox(rota_school: Harness) -> None:
    """The contract block id `urgent`: a checkbox, optional, for everyone."""
    for user in (TEACHER, DSL):
        view = await rota_school.open_concern(user)
        [block] = [b for b in view["blocks"] if b.get("block_id") == "urgent"]
        assert block["element"]["type"] == "checkboxes" and block["optional"] is True
        [option] = block["element"]["options"]
        assert option["text"]["text"] == "A child may be at immediate risk"


async def test_an_urgent_allegation_about_the_dsl_on_duty_stays_with_the_head(
    rota_school: Harness,
) -> None:
    """At night, a TA reports the conduct of Gareth Price, who is the DSL on duty, and ticks
    urgent. The allegation is the head's alone: the rota is never told, the escalation
    reminds the head only, and Gareth Price hears nothing at any step."""
    school = rota_school
    people = People(school)
    filed = at(a_working_tuesday() + dt.timedelta(days=1), 2)
    move_clock(school, filed)
    response = await school.report_concern(
        TA,
        pupil_query=PUPIL_4B,
        narrative=NARRATIVE,
        categories=["Behaviour"],
        about_adult="staff",
        adult_query=name_of(PASTORAL),
        urgent=True,
    )
    assert response.status == 200 and not (response.json or {}).get("errors")
    await school.delivered()
    [alert] = school.standin.messages_for_user(HEAD)
    assert alert["text"].startswith("URGENT: ")
    [receipt] = school.standin.messages_for_user(TA)
    assert f"Also speak to {name_of(HEAD)}" in receipt["text"]
    assert name_of(PASTORAL) not in receipt["text"]

    for minutes in (10, 20, 30):
        move_clock(school, filed + dt.timedelta(minutes=minutes, seconds=5))
        await check(school)
    assert len(escalations(school, HEAD)) == 3
    for person in (PASTORAL, DSL, DEPUTY, TEACHER_3A, CLASS_TEACHER):
        assert school.standin.messages_for_user(person) == [], person

    # The head opens it: the escalation stops; the adult named still cannot see it.
    async with people.signed_in(HEAD) as head:
        status, _ = await head.get("/incidents/1")
        assert status == 200
    async with people.signed_in(PASTORAL) as accused:
        status, _ = await accused.get("/incidents/1")
        assert status == 404
    move_clock(school, filed + dt.timedelta(minutes=50, seconds=5))
    await check(school)
    assert len(escalations(school, HEAD)) == 3
    assert_nothing_sensitive_sent(school)
