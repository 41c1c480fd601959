"""Opened versus acknowledged, and unread chased: Mark as read is a receipt, opening the
incident's page is "opened"; an alert on a restricted category still unopened after
`[unread] chase_after_working_hours` is re-sent once and listed for the DSLs."""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select

from store.models import Alert, ReadReceipt, Staff
from testing.harness import Harness
from tests.support.clock import LONDON, WORKING, at, move_clock
from tests.support.school import DEPUTY, DSL, HEAD, NARRATIVE, PASTORAL, TA, TEACHER, name_of
from tests.support.slack import file_concern
from tests.support.web import People, main_of, shown

REMINDER = "Reminder: you have not yet opened concern #1"


def a_working_tuesday() -> dt.date:
    day = dt.datetime.now(LONDON).date() + dt.timedelta(days=2)
    while day.weekday() != 1 or not all(
        WORKING.is_working_day(day + dt.timedelta(days=n)) for n in range(-1, 4)
    ):
        day += dt.timedelta(days=1)
    return day


async def states(school: Harness) -> dict[str, tuple[bool, bool, bool]]:
    """Per recipient: (acknowledged, opened, chased)."""
    async with school.server.factory() as db:
        rows = await db.execute(
            select(Staff.slack_user_id, ReadReceipt.alert_id, Alert.opened_at, Alert.chased_at)
            .join(Staff, Staff.id == Alert.recipient_id)
            .outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
        )
        return {
            user: (receipt is not None, opened is not None, chased is not None)
            for user, receipt, opened, chased in rows
        }


def row_of(page: str, name: str) -> str:
    table = page[page.index('id="receipts"') : page.index("</table>", page.index('id="receipts"'))]
    found = re.search(rf"<tr[^>]*>\s*<td>{name}</td>.*?</tr>", table, re.S)
    assert found, name
    return found.group(0)


async def test_mark_as_read_acknowledges_and_opening_the_page_opens(school: Harness) -> None:
    people = People(school)
    await file_concern(school, TEACHER)
    message = school.standin.messages_for_user(DSL)[0]
    channel = school.standin.dm_channel_for(DSL)
    assert (
        await school.slack.click_button(DSL, message, "alert_mark_read", channel_id=channel)
    ).status == 200
    await school.delivered()
    assert (await states(school))[DSL] == (True, False, False)
    async with people.signed_in(DEPUTY) as deputy:
        _, page = await deputy.get("/incidents/1")
    page = shown(page)
    dsl_row = row_of(page, name_of(DSL))
    assert "Read</span>" in dsl_row and "Not opened" in dsl_row
    deputy_row = row_of(page, name_of(DEPUTY))  # the page the deputy is reading: opened
    assert "Unread</span>" in deputy_row and "Opened</span>" in deputy_row
    assert (await states(school))[DEPUTY] == (False, True, False)
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
    assert (await states(school))[DSL] == (True, True, False)
    assert "Opened</span>" in row_of(shown(page), name_of(DSL))
    # Opened is kept from the first time: a later view does not change it.
    async with school.server.factory() as db:
        first = await db.scalar(
            select(Alert.opened_at)
            .join(Staff, Staff.id == Alert.recipient_id)
            .where(Staff.slack_user_id == DSL)
        )
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/incidents/1")
    async with school.server.factory() as db:
        again = await db.scalar(
            select(Alert.opened_at)
            .join(Staff, Staff.id == Alert.recipient_id)
            .where(Staff.slack_user_id == DSL)
        )
    assert first == again


async def chase(school: Harness) -> None:
    await school.server.unread_job.run()
    await school.delivered()


async def test_an_unopened_restricted_alert_is_chased_once_and_listed_for_dsls(
    school: Harness,
) -> None:
    people = People(school)
    tuesday = a_working_tuesday()
    move_clock(school, at(tuesday, 9))
    await file_concern(school, DSL, categories=["Safeguarding"])
    # The head acknowledges in Slack (not opened); the deputy opens the record.
    message = school.standin.messages_for_user(HEAD)[0]
    channel = school.standin.dm_channel_for(HEAD)
    await school.slack.click_button(HEAD, message, "alert_mark_read", channel_id=channel)
    await school.delivered()
    move_clock(school, at(tuesday, 10))
    async with people.signed_in(DEPUTY) as deputy:
        assert (await deputy.get("/incidents/1"))[0] == 200
    # Four working hours: not before 13:00.
    move_clock(school, at(tuesday, 12, 58))
    await chase(school)
    assert (await states(school))[HEAD] == (True, False, False)
    for person in (HEAD, PASTORAL):
        assert not any(
            m["text"].startswith(REMINDER) for m in school.standin.messages_for_user(person)
        )
    move_clock(school, at(tuesday, 13, 1))
    await chase(school)
    for minutes in (5, 120):  # the check runs again: no second reminder
        move_clock(school, at(tuesday, 13, 1) + dt.timedelta(minutes=minutes))
        await chase(school)
    for person, expected in ((HEAD, 1), (PASTORAL, 1), (DEPUTY, 0), (DSL, 0), (TEACHER, 0)):
        reminders = [
            m for m in school.standin.messages_for_user(person) if m["text"].startswith(REMINDER)
        ]
        assert len(reminders) == expected, person
    found = await states(school)
    assert found[HEAD] == (True, False, True) and found[DEPUTY][1:] == (True, False)

    # Listed for the DSLs in the web view...
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/alerts")
    listed = main_of(shown(page))
    assert "Alerts not yet opened" in listed
    section = listed[listed.index('id="unopened"') :]
    assert name_of(HEAD) in section and name_of(PASTORAL) in section
    assert name_of(DEPUTY) not in section
    async with people.signed_in(TEACHER) as teacher:
        _, page = await teacher.get("/alerts")
    assert "Alerts not yet opened" not in page
    # ... and in App Home (key-holders only).
    for number, user in enumerate((DSL, TEACHER), start=1):
        await school.slack.event(
            {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
        )
        await school.standin.wait_for_calls("views.publish", number)
    home = json.dumps(school.standin.home_views[DSL]["blocks"])
    assert "Alerts not yet opened" in home and f"<@{HEAD}> has not opened it" in home
    assert "Alerts not yet opened" not in json.dumps(school.standin.home_views[TEACHER]["blocks"])

    # Once the head opens it, it is no longer listed.
    async with people.signed_in(HEAD) as head:
        await head.get("/incidents/1")
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/alerts")
    section = shown(page)[shown(page).index("Alerts not yet opened") :]
    assert name_of(HEAD) not in section and name_of(PASTORAL) in section
    for call in school.standin.calls_to("chat.postMessage"):
        assert NARRATIVE not in json.dumps(call.params)


async def test_an_unrestricted_alert_is_not_chased(school: Harness) -> None:
    tuesday = a_working_tuesday()
    move_clock(school, at(tuesday, 9))
    await file_concern(school, TEACHER)
    move_clock(school, at(tuesday + dt.timedelta(days=1), 17))
    await chase(school)
    assert not any(flags[2] for flags in (await states(school)).values())


async def test_an_alert_whose_access_was_withdrawn_is_not_chased(school: Harness) -> None:
    people = People(school)
    tuesday = a_working_tuesday()
    move_clock(school, at(tuesday, 9))
    await file_concern(school, DSL, categories=["Safeguarding"], also_alert=[TA])
    async with school.server.factory() as db:
        ta = await db.scalar(select(Staff.id).where(Staff.slack_user_id == TA))
    move_clock(school, at(tuesday, 10))
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/incidents/1")
        status, _ = await dsl.post("/incidents/1/withdraw", {"staff": str(ta)})
        assert status == 200
    move_clock(school, at(tuesday, 13, 1))
    await chase(school)
    reminded = {
        person
        for person in (TA, PASTORAL)
        for m in school.standin.messages_for_user(person)
        if m["text"].startswith(REMINDER)
    }
    assert reminded == {PASTORAL}
