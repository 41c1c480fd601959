"""Agency referrals in the web view, end to end, on both databases.

People sign in and record referrals, responses and closures with the Add action form,
as they would; the server's clock is moved (`harness.clock_offset`) to known school
times worked out from the real date, so due times and "overdue" are predictable.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from sqlalchemy import select

from handlers.web.render import when
from store.messages import SNOOZE_ACTION
from store.models import IncidentAction, Referral, ReferralEvent
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.clock import LONDON, WORKING, at, move_clock
from tests.support.records import audit_events
from tests.support.school import DEPUTY, DSL, TEACHER, configured_school
from tests.support.slack import file_concern
from tests.support.web import People, shown

MASH = "Children's social care (MASH)"
ACTION_TEXT = "Phoned the MASH duty desk and made a referral."


def local(day: dt.date, hour: int, minute: int = 0) -> str:
    """A London wall-clock time on `day` as a `datetime-local` form value."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def a_working_week() -> dt.date:
    """The Monday of the first week at least two days away whose Mon-Fri all work."""
    day = dt.datetime.now(LONDON).date() + dt.timedelta(days=2)
    while day.weekday() != 0 or not all(
        WORKING.is_working_day(day + dt.timedelta(days=n)) for n in range(5)
    ):
        day += dt.timedelta(days=1)
    return day


# TEACHER (4B) files a behaviour concern about a 4B pupil in Slack.
report = file_concern


async def add_action(
    user: WebUser, number: int, text: str = ACTION_TEXT, **fields: str
) -> tuple[int, str]:
    """Open the incident and add an action with the given referral fields."""
    status, _ = await user.get(f"/incidents/{number}")
    assert status == 200
    return await user.post(f"/incidents/{number}/actions", {"text": text, **fields})


def referral_ids(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li id="referral-(\d+)"', body)]


def referral_part(body: str, referral_id: int) -> str:
    """The incident page's entry for one referral, as read."""
    start = body.index(f'<li id="referral-{referral_id}"')
    part = re.sub(r"<[^>]+>", " ", body[start : body.index("</details>", start)])
    return " ".join(shown(part).split()).replace(" )", ")").replace("( ", "(")


def board_ids(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="board-referral-(\d+)"', body)]


async def all_referrals(school: Harness) -> list[Referral]:
    async with school.server.factory() as db:
        return list((await db.scalars(select(Referral).order_by(Referral.id))).all())


async def nudge_check(school: Harness) -> int:
    nudged = await school.server.overdue_job.run()
    await school.delivered()
    return nudged


# -- recording a referral --------------------------------------------------------------------


async def test_a_referral_is_due_by_the_agency_timescale(school: Harness) -> None:
    people = People(school)
    monday = a_working_week()
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    move_clock(school, at(tuesday, 10))
    await report(school)
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
        assert "No referrals recorded." in page
        assert f'<option value="{MASH}">' in shown(page)
        assert (
            "(respond within 1 working day)" in page and "(respond within 20 working days)" in page
        )
        assert f'name="referred_at" value="{local(tuesday, 10)}"' in page  # now, school time
        status, body = await dsl.post(
            "/incidents/1/actions",
            {
                "text": ACTION_TEXT,
                "agency": MASH,
                "referred_at": local(tuesday, 9, 30),
                "reference": "MASH/2291",
            },
        )
        assert status == 200 and dsl.last_url.endswith("/incidents/1")
        [referral] = await all_referrals(school)
        # One working day: Wednesday at the same time.
        assert referral.referred_at == at(tuesday, 9, 30)
        assert referral.due_at == at(wednesday, 9, 30)
        assert (referral.agency, referral.reference, referral.timescale, referral.status) == (
            MASH,
            "MASH/2291",
            "1 working day",
            "awaiting",
        )
        async with school.server.factory() as db:
            action = await db.scalar(select(IncidentAction))
        assert action is not None and referral.action_id == action.id
        assert referral_ids(body) == [referral.id]
        entry = referral_part(body, referral.id)
        assert f"R{referral.id} · {MASH}" in entry
        assert "MASH/2291" in entry and "1 working day" in entry
        assert when(at(tuesday, 9, 30)) in entry  # referred
        assert when(at(wednesday, 9, 30)) in entry and "09:30" in when(at(wednesday, 9, 30))
        assert "Waiting for the agency" in entry
        assert "Referred by Alys Hughes" in entry
        # It can now be answered or closed with a later action.
        assert f'name="outcome-{referral.id}" value="response"' in body
        # ...and it is on the board.
        status, board = await dsl.get("/referrals")
        assert status == 200 and board_ids(board) == [referral.id]
        assert f'href="/incidents/1#referral-{referral.id}"' in board
        assert "Not yet due" in board and when(at(wednesday, 9, 30)) in shown(board)
    [added] = await audit_events(school, "referral.add")
    assert added.outcome == "ok" and added.detail == (
        f"referral {referral.id}; {MASH}; action {referral.action_id}"
    )
    assert added.incident_id == referral.incident_id
    assert [e.outcome for e in await audit_events(school, "action.add")] == ["ok"]


async def test_agencies_and_timescales_come_from_the_config_file(
    db_url: str, tmp_path: Path
) -> None:
    toml = (
        "[[agencies]]\n"
        'name = "Police"\n'
        'respond_within = "4 working hours"\n'
        "[[agencies]]\n"
        'name = "Virtual school"\n'
        'respond_within = "2 working days"\n'
    )
    async with configured_school(db_url, tmp_path, toml) as school:
        people = People(school)
        monday = a_working_week()
        tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
        move_clock(school, at(tuesday, 16, 30))
        await report(school)
        async with people.signed_in(DSL) as dsl:
            _, page = await dsl.get("/incidents/1")
            select_html = page.split('id="action-agency"')[1].split("</select>")[0]
            offered = re.findall(r'<option value="([^"]*)"', select_html)
            assert offered == ["", "Police", "Virtual school"]
            assert "(respond within 4 working hours)" in select_html
            status, body = await dsl.post(
                "/incidents/1/actions",
                {"text": ACTION_TEXT, "agency": "Police", "referred_at": local(tuesday, 16)},
            )
            assert status == 200
        [referral] = await all_referrals(school)
        # Two working hours on Tuesday (to 18:00), two more from 08:00 on Wednesday.
        assert referral.due_at == at(wednesday, 10)
        assert referral.timescale == "4 working hours"
        assert when(at(wednesday, 10)) in referral_part(body, referral.id)


async def test_field_errors_show_again_with_400_and_keep_nothing(school: Harness) -> None:
    people = People(school)
    monday = a_working_week()
    tuesday = monday + dt.timedelta(days=1)
    move_clock(school, at(tuesday, 10))
    await report(school)
    async with people.signed_in(DSL) as dsl:
        cases = [
            ({"agency": "Ghostbusters"}, "Choose an agency from the list."),
            ({"agency": MASH, "referred_at": "last Tuesday"}, "Enter the date and time"),
            ({"reference": "MASH/1"}, "Choose the agency the referral went to."),
            ({"agency": MASH, "reference": "x" * 101}, "100 characters or fewer"),
            # In the future: refused by the store after the action was written, so the
            # whole transaction (the action included) is rolled back.
            (
                {"agency": MASH, "referred_at": local(tuesday + dt.timedelta(days=1), 9)},
                "The referral cannot be in the future.",
            ),
        ]
        for fields, message in cases:
            status, body = await add_action(dsl, 1, **fields)
            assert status == 400, fields
            page = shown(body)
            assert message in page and "The action was not added." in page
            assert ACTION_TEXT in page  # what they typed is kept
            if "reference" in fields:
                assert f'autocomplete="off" value="{fields["reference"]}"' in body
            if fields.get("agency") == MASH:
                assert f'<option value="{MASH}" selected>' in page
        # Both the action's and the referral's mistakes are reported together.
        status, body = await add_action(dsl, 1, text=" ", agency="Ghostbusters")
        assert status == 400
        assert "Say what was done or learned." in body and "Choose an agency" in body
    async with school.server.factory() as db:
        assert (await db.scalars(select(IncidentAction))).all() == []
    assert await all_referrals(school) == []
    failed = await audit_events(school, "action.add")
    assert [e.outcome for e in failed] == ["failed"] * 6
    assert failed[4].detail == "invalid: referred_at"
    assert await audit_events(school, "referral.add") == []


# -- responses and closing -------------------------------------------------------------------


async def test_response_and_close_change_the_state_and_stop_the_nudges(school: Harness) -> None:
    people = People(school)
    monday = a_working_week()
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    move_clock(school, at(monday, 9, 30))
    await report(school)
    async with people.signed_in(DSL) as dsl:
        for agency in (MASH, "Police"):
            status, _ = await add_action(dsl, 1, agency=agency, referred_at=local(monday, 9))
            assert status == 200
    answered, closed = (r.id for r in await all_referrals(school))
    # Tuesday 10:00: both overdue since 09:00, both nudged.
    move_clock(school, at(tuesday, 10))
    assert await nudge_check(school) == 2
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
        assert "Overdue (due today)" in referral_part(page, answered)
    move_clock(school, at(wednesday, 9, 30))
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
        assert "Overdue by 1 working day" in referral_part(page, answered)
        # Mistakes first: a response before the referral was made, and a second response.
        status, body = await dsl.post(
            "/incidents/1/actions",
            {
                "text": "MASH called back.",
                f"outcome-{answered}": "response",
                f"responded_at-{answered}": local(monday, 8),
            },
        )
        assert status == 400 and "The response cannot be before the referral." in body
        status, body = await dsl.post(
            "/incidents/1/actions",
            {
                "text": "MASH called back: strategy discussion tomorrow. Police closed it.",
                f"outcome-{answered}": "response",
                f"responded_at-{answered}": local(wednesday, 9, 15),
                f"outcome-{closed}": "closed",
            },
        )
        assert status == 200
        first = referral_part(body, answered)
        assert "Responded" in first and when(at(wednesday, 9, 15)) in first
        assert "Agency responded by Alys Hughes" in first
        second = referral_part(body, closed)
        assert "Closed" in second and "Closed by Alys Hughes" in second
        # A responded referral can still be closed, but not answered again; a closed one
        # is offered nothing.
        assert f'name="outcome-{answered}" value="closed"' in body
        assert f'name="outcome-{answered}" value="response"' not in body
        assert f'name="outcome-{closed}"' not in body
        # A tampered form answering it again is refused.
        status, body = await dsl.post(
            "/incidents/1/actions",
            {"text": "Again.", f"outcome-{answered}": "response"},
        )
        assert status == 400 and "That referral is not open" not in body
        assert "already has a response recorded" in body
        status, body = await dsl.post(
            "/incidents/1/actions", {"text": "Again.", f"outcome-{closed}": "closed"}
        )
        assert status == 400 and "That referral is not open on this concern." in body
        # Neither is waiting, so the board is empty.
        _, board = await dsl.get("/referrals")
        assert board_ids(board) == [] and "No referrals are waiting" in board
    by_id = {r.id: r for r in await all_referrals(school)}
    assert by_id[answered].status == "responded"
    assert by_id[answered].responded_at == at(wednesday, 9, 15)
    assert by_id[closed].status == "closed" and by_id[closed].closed_at is not None
    # No more nudges, that day or the next.
    move_clock(school, at(wednesday, 10))
    assert await nudge_check(school) == 0
    move_clock(school, at(wednesday + dt.timedelta(days=1), 10))
    assert await nudge_check(school) == 0
    responses = await audit_events(school, "referral.response")
    closes = await audit_events(school, "referral.close")
    assert [e.detail.split(";")[0] for e in responses if e.detail] == [f"referral {answered}"]
    assert [e.detail.split(";")[0] for e in closes if e.detail] == [f"referral {closed}"]
    async with school.server.factory() as db:
        kinds = (
            await db.scalars(
                select(ReferralEvent.kind)
                .where(ReferralEvent.referral_id == answered)
                .order_by(ReferralEvent.id)
            )
        ).all()
    assert kinds == ["referred", "nudged", "response"]


async def test_the_page_shows_nudges_and_a_snooze_from_slack(school: Harness) -> None:
    people = People(school)
    monday = a_working_week()
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    move_clock(school, at(monday, 9, 30))
    await report(school)
    async with people.signed_in(DSL) as dsl:
        await add_action(dsl, 1, agency=MASH, referred_at=local(monday, 9))
    [referral] = await all_referrals(school)
    move_clock(school, at(tuesday, 10))
    assert await nudge_check(school) == 1
    [message] = [
        m for m in school.standin.messages_for_user(DSL) if m["text"].startswith("Referral R")
    ]
    assert f"/incidents/1#referral-{referral.id}" in json.dumps(message["blocks"])
    move_clock(school, at(tuesday, 10, 5))
    await school.slack.click_button(
        DSL, message, SNOOZE_ACTION, channel_id=school.standin.dm_channel_for(DSL)
    )
    await school.server.tasks.idle()
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
        _, board = await dsl.get("/referrals")
    entry = referral_part(page, referral.id)
    [snoozed] = await all_referrals(school)
    assert snoozed.snoozed_until is not None
    assert at(wednesday, 10, 5) <= snoozed.snoozed_until < at(wednesday, 10, 6)
    assert "Snoozed until" in entry and when(snoozed.snoozed_until) in entry
    assert "Overdue reminder sent (0 working days overdue; 1 told)" in entry
    assert f"Reminders snoozed by Alys Hughes until {when(snoozed.snoozed_until)}" in entry
    assert when(snoozed.snoozed_until) in shown(board)


# -- the board ---------------------------------------------------------------------------------


async def test_the_board_lists_overdue_first_then_soonest_due(school: Harness) -> None:
    people = People(school)
    monday = a_working_week()
    days = [monday + dt.timedelta(days=n) for n in range(5)]
    mon, tue, wed, thu, _ = days
    move_clock(school, at(thu, 10))
    await report(school)
    await report(school)
    made = {
        # name: (incident, agency, referred at), with the due time (it is Thursday 10:00)
        "not due, 5 days": (2, "Early help", local(thu, 9)),  # next Thu 09:00
        "1 day overdue": (2, "Police", local(tue, 11)),  # Wed 11:00
        "not due, today": (2, MASH, local(wed, 15)),  # Thu 15:00
        "2 days overdue": (1, MASH, local(mon, 9)),  # Tue 09:00
        "due today": (1, "LADO", local(wed, 9, 30)),  # Thu 09:30
    }
    ids: dict[str, int] = {}
    async with people.signed_in(DSL) as dsl:
        for name, (number, agency, referred) in made.items():
            status, body = await add_action(dsl, number, agency=agency, referred_at=referred)
            assert status == 200
            ids[name] = max(referral_ids(body))
        status, board = await dsl.get("/referrals")
    assert status == 200
    assert board_ids(board) == [
        ids[name]
        for name in (
            "2 days overdue",
            "1 day overdue",
            "due today",
            "not due, today",
            "not due, 5 days",
        )
    ]
    overdue_by = [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r'<td class="overdue-by">(.*?)</td>', board)
    ]
    assert overdue_by == [
        "2 working days",
        "1 working day",
        "due today",
        "Not yet due",
        "Not yet due",
    ]
    page = shown(board)
    assert "5 waiting, 3 overdue." in page
    assert f'<a href="/incidents/1#referral-{ids["2 days overdue"]}">' in board
    assert '<a href="/incidents/2">#2</a>' in board
    assert "Early help" in page and "LADO" in page
    assert when(at(tue, 9)) in page and when(at(mon, 9)) in page  # due and referred
    assert "hungry" not in page  # no narrative, no pupils on the board
    views = await audit_events(school, "referrals.view")
    assert [(v.outcome, v.detail) for v in views] == [("ok", "5 waiting")]


async def test_only_keyholders_see_the_board(school: Harness) -> None:
    people = People(school)
    async with people.signed_in(TEACHER) as teacher:
        _, missing = await teacher.get("/incidents/999")
        status, body = await teacher.get("/referrals")
        assert status == 404 and body == missing.replace("/incidents/999", "/referrals")
        _, alerts = await teacher.get("/alerts")
        assert 'href="/referrals"' not in alerts
    async with people.signed_in(DEPUTY) as deputy:
        status, body = await deputy.get("/referrals")
        assert status == 200 and "<h1>Referrals</h1>" in body
        assert 'href="/referrals"' in body  # the nav link
    views = await audit_events(school, "referrals.view")
    assert [(v.outcome, v.detail) for v in views] == [
        ("refused", "not a key-holder"),
        ("ok", "0 waiting"),
    ]
