"""Overdue referral nudges, end to end with the Slack stand-in, on both databases.

The server's clock is moved with `harness.clock_offset` to known school times (a
Tuesday 10:00 in London in a week with no bank holiday, and so on, worked out from the
real date), and the overdue check is run by calling the job the scheduler runs
(`server.overdue_job.run()`), so nothing here waits for time to pass. Referrals are made
through `store.referrals` directly: these tests are about the scheduler, not the pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import holidays
import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from scheduler.jobs import HEAP_TRIM_SECONDS, OverdueReferrals, trim_heap
from store import outbox, referrals
from store.db import SessionFactory, create_engine, session_factory, transaction
from store.messages import SNOOZE_ACTION
from store.models import (
    Incident,
    IncidentPupil,
    Nudge,
    OutboxMessage,
    Pupil,
    Referral,
    ReferralEvent,
    Staff,
)
from testing.harness import Harness
from tests.support.clock import LONDON, WORKING, at, move_clock
from tests.support.records import add_action, audit_events
from tests.support.school import (
    DEPUTY,
    DSL,
    HEAD,
    NARRATIVE,
    PASTORAL,
    TEACHER,
    configured_school,
)
from tests.support.slack import file_concern

MASH = "Children's social care (MASH)"


# -- school time ------------------------------------------------------------------------


def a_working_tuesday() -> dt.date:
    """The first Tuesday at least two days from now in a week whose Mon-Fri all work."""
    day = dt.datetime.now(LONDON).date() + dt.timedelta(days=2)
    while day.weekday() != 1 or not all(
        WORKING.is_working_day(day + dt.timedelta(days=n)) for n in range(-1, 4)
    ):
        day += dt.timedelta(days=1)
    return day


# -- a school with a concern and referrals ---------------------------------------------------

# TEACHER (4B) files a behaviour concern about a 4B pupil in Slack.
report = file_concern


async def refer(
    school: Harness, *, referred_at: dt.datetime, count: int = 1, agency: str = MASH
) -> list[int]:
    """`count` referrals on concern #1, recorded by the DSL with one action."""
    config = school.server.school
    chosen = config.agency(agency)
    assert chosen is not None
    async with transaction(school.server.factory) as db:
        incident = await db.scalar(select(Incident).where(Incident.number == 1))
        author = await db.scalar(select(Staff).where(Staff.slack_user_id == DSL))
        assert incident is not None and author is not None
        action = await add_action(
            school, db, author=author, incident=incident, text="Referred to the agency by phone."
        )
        made = [
            await referrals.record_referral(
                db,
                incident=incident,
                action=action,
                author=author,
                agency=chosen,
                referred_at=referred_at,
                reference=None,
                working=config.working_time,
                cipher=school.server.cipher,
                now=school.now(),
            )
            for _ in range(count)
        ]
    return [r.id for r in made]


async def reported_and_referred(school: Harness, tuesday: dt.date) -> int:
    """Concern #1, referred to MASH on Monday 09:00: due Tuesday 09:00 (1 working day)."""
    monday = tuesday - dt.timedelta(days=1)
    move_clock(school, at(monday, 9, 5))
    await report(school)
    [referral_id] = await refer(school, referred_at=at(monday, 9))
    return referral_id


def nudges(harness: Harness, user_id: str) -> list[dict[str, Any]]:
    """The overdue-referral DMs `user_id` has, oldest first."""
    return [
        m
        for m in harness.standin.messages_for_user(user_id)
        if m.get("text", "").startswith("Referral R")
    ]


async def nudge_rows(harness: Harness) -> list[tuple[int, dt.date, int, bool]]:
    async with harness.server.factory() as db:
        rows = await db.execute(
            select(Nudge.referral_id, Nudge.work_day, Nudge.overdue_days, Nudge.escalated).order_by(
                Nudge.id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def get_referral(harness: Harness, referral_id: int) -> Referral:
    async with harness.server.factory() as db:
        referral = await db.get(Referral, referral_id)
    assert referral is not None
    return referral


async def check(harness: Harness) -> int:
    """One pass of the overdue check, then wait for Slack to have what it queued."""
    nudged = await harness.server.overdue_job.run()
    await harness.delivered()
    return nudged


# -- once per working day -----------------------------------------------------------------


async def test_a_referral_past_due_is_nudged_once_a_working_day(school: Harness) -> None:
    tuesday = a_working_tuesday()
    wednesday = tuesday + dt.timedelta(days=1)
    referral_id = await reported_and_referred(school, tuesday)
    referral = await get_referral(school, referral_id)
    assert referral.due_at == at(tuesday, 9)  # MASH: one working day
    # Not yet due: nothing.
    move_clock(school, at(tuesday, 8, 30))
    assert await check(school) == 0
    # Due at 09:00; at 10:00 the DSL gets one nudge.
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    assert len(nudges(school, DSL)) == 1
    assert "is overdue (due today)" in nudges(school, DSL)[0]["text"]
    # Only the DSL: not the other key-holders, nor the head before escalation.
    for other in (DEPUTY, HEAD, PASTORAL, TEACHER):
        assert nudges(school, other) == []
    # The check runs again the same working day (as the scheduler does every 5 minutes).
    for hour in (10, 14, 17):
        move_clock(school, at(tuesday, hour, 30))
        assert await check(school) == 0
    assert len(nudges(school, DSL)) == 1
    # The next working day: one more, saying how overdue.
    move_clock(school, at(wednesday, 8, 1))
    assert await check(school) == 1
    assert await check(school) == 0
    sent = nudges(school, DSL)
    assert len(sent) == 2 and "is 1 working day overdue" in sent[1]["text"]
    assert await nudge_rows(school) == [
        (referral_id, tuesday, 0, False),
        (referral_id, wednesday, 1, False),
    ]
    # Each nudge is in the referral's history.
    async with school.server.factory() as db:
        [(_, events)] = await referrals.for_incident(db, incident_id=referral.incident_id)
    assert [e.kind for e in events] == ["referred", "nudged", "nudged"]


async def test_the_nudge_names_the_referral_but_no_pupil(school: Harness) -> None:
    tuesday = a_working_tuesday()
    referral_id = await reported_and_referred(school, tuesday)
    move_clock(school, at(tuesday + dt.timedelta(days=1), 11))
    assert await check(school) == 1
    [message] = nudges(school, DSL)
    assert message["text"] == (
        f"Referral R{referral_id} on concern #1 to {MASH} is 1 working day overdue "
        "and has no response recorded."
    )
    blocks = json.dumps(message["blocks"])
    assert SNOOZE_ACTION in blocks and "Snooze 1 working day" in blocks
    assert f"/incidents/1#referral-{referral_id}" in blocks  # Open
    # Nothing about the child, in the DM or anywhere in the Slack traffic for it.
    async with school.server.factory() as db:
        pupils = (
            await db.scalars(select(Pupil).join(IncidentPupil, IncidentPupil.pupil_id == Pupil.id))
        ).all()
    assert pupils
    posted = json.dumps(
        [
            c.params
            for c in school.standin.calls_to("chat.postMessage")
            if "Referral R" in str(c.params.get("text"))
        ]
    )
    for pupil in pupils:
        for secret in (pupil.display_name, pupil.forename, pupil.surname, pupil.upn):
            assert secret not in blocks and secret not in posted
    assert "hungry" not in posted and NARRATIVE not in posted


# -- snoozing -----------------------------------------------------------------------------


async def test_snooze_holds_the_nudges_for_one_working_day(school: Harness) -> None:
    tuesday = a_working_tuesday()
    wednesday = tuesday + dt.timedelta(days=1)
    referral_id = await reported_and_referred(school, tuesday)
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    [message] = nudges(school, DSL)
    channel = school.standin.dm_channel_for(DSL)
    move_clock(school, at(tuesday, 10, 15))
    response = await school.slack.click_button(DSL, message, SNOOZE_ACTION, channel_id=channel)
    assert response.status == 200
    await school.server.tasks.idle()
    await school.delivered()
    referral = await get_referral(school, referral_id)
    assert referral.snoozed_until is not None
    assert at(wednesday, 10, 15) <= referral.snoozed_until < at(wednesday, 10, 16)
    # The DM was updated in place: Snoozed until, no Snooze button, Open still there.
    updates = school.standin.calls_to("chat.update", ok_only=True)
    assert [(u.params["channel"], u.params["ts"]) for u in updates] == [(channel, message["ts"])]
    updated = school.standin.messages[(channel, message["ts"])]
    assert "Snoozed until" in json.dumps(updated["blocks"])
    assert SNOOZE_ACTION not in json.dumps(updated["blocks"])
    assert f"#referral-{referral_id}" in json.dumps(updated["blocks"])
    assert len(nudges(school, DSL)) == 1  # updated, not posted again
    # Wednesday before the snooze ends: nothing. After it: the day's nudge.
    move_clock(school, at(wednesday, 8, 0))
    assert await check(school) == 0
    move_clock(school, at(wednesday, 10, 14))
    assert await check(school) == 0
    move_clock(school, at(wednesday, 10, 20))
    assert await check(school) == 1
    assert len(nudges(school, DSL)) == 2
    snoozes = await audit_events(school, "referral.snooze")
    assert [(e.outcome, e.detail) for e in snoozes] == [("ok", f"referral {referral_id}")]


async def test_a_non_keyholder_cannot_snooze(school: Harness) -> None:
    tuesday = a_working_tuesday()
    referral_id = await reported_and_referred(school, tuesday)
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    [message] = nudges(school, DSL)
    channel = school.standin.dm_channel_for(DSL)
    # A teacher sends the button's payload (they never get a nudge, so it is forged).
    response = await school.slack.block_actions(
        TEACHER,
        action_id=SNOOZE_ACTION,
        value=str(referral_id),
        message=message,
        channel_id=channel,
    )
    assert response.status == 200
    await school.server.tasks.idle()
    await school.delivered()
    assert (await get_referral(school, referral_id)).snoozed_until is None
    assert school.standin.calls_to("chat.update") == []
    [ephemeral] = [e for e in school.standin.ephemerals if e["user"] == TEACHER]
    assert "Only the safeguarding team" in ephemeral["text"]
    refused = await audit_events(school, "referral.snooze")
    assert [(e.outcome, e.actor_slack_id) for e in refused] == [("refused", TEACHER)]
    # The nudges carry on as before.
    move_clock(school, at(tuesday + dt.timedelta(days=1), 10))
    assert await check(school) == 1


async def test_snoozing_an_answered_referral_says_it_is_no_longer_waiting(
    school: Harness,
) -> None:
    tuesday = a_working_tuesday()
    referral_id = await reported_and_referred(school, tuesday)
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    [message] = nudges(school, DSL)
    async with transaction(school.server.factory) as db:
        referral = await db.get(Referral, referral_id)
        incident = await db.scalar(select(Incident).where(Incident.number == 1))
        dsl = await db.scalar(select(Staff).where(Staff.slack_user_id == DSL))
        assert referral is not None and incident is not None and dsl is not None
        action = await add_action(
            school, db, author=dsl, incident=incident, text="MASH called back."
        )
        await referrals.record_outcome(
            db, referral=referral, action=action, author=dsl, outcome="response", now=school.now()
        )
    channel = school.standin.dm_channel_for(DSL)
    await school.slack.click_button(DSL, message, SNOOZE_ACTION, channel_id=channel)
    await school.server.tasks.idle()
    assert (await get_referral(school, referral_id)).snoozed_until is None
    [ephemeral] = [e for e in school.standin.ephemerals if e["user"] == DSL]
    assert ephemeral["text"] == "That referral is no longer waiting. Nothing was snoozed."
    assert [e.outcome for e in await audit_events(school, "referral.snooze")] == ["refused"]


# -- escalation ---------------------------------------------------------------------------


async def test_escalation_adds_the_head(school: Harness) -> None:
    assert school.server.school.escalate_after_working_days == 2  # the default
    tuesday = a_working_tuesday()
    referral_id = await reported_and_referred(school, tuesday)
    for offset in (0, 1):  # due today, then 1 working day overdue: the DSL only
        move_clock(school, at(tuesday + dt.timedelta(days=offset), 10))
        assert await check(school) == 1
    assert len(nudges(school, DSL)) == 2 and nudges(school, HEAD) == []
    # Thursday: 2 working days overdue, so the head is told as well (once).
    move_clock(school, at(tuesday + dt.timedelta(days=2), 10))
    assert await check(school) == 1
    assert await check(school) == 0
    [to_head] = nudges(school, HEAD)
    assert f"R{referral_id}" in to_head["text"] and "2 working days overdue" in to_head["text"]
    assert len(nudges(school, DSL)) == 3
    assert nudges(school, DEPUTY) == [] and nudges(school, PASTORAL) == []
    rows = await nudge_rows(school)
    assert [(days, escalated) for _, _, days, escalated in rows] == [
        (0, False),
        (1, False),
        (2, True),
    ]


async def test_the_escalation_threshold_comes_from_the_config_file(
    db_url: str, tmp_path: Path
) -> None:
    toml = "[nudges]\nescalate_after_working_days = 1\n"
    async with configured_school(db_url, tmp_path, toml) as school:
        assert school.server.school.escalate_after_working_days == 1
        tuesday = a_working_tuesday()
        await reported_and_referred(school, tuesday)
        move_clock(school, at(tuesday, 10))
        assert await check(school) == 1
        assert nudges(school, HEAD) == []
        move_clock(school, at(tuesday + dt.timedelta(days=1), 10))
        assert await check(school) == 1
        assert len(nudges(school, HEAD)) == 1 and len(nudges(school, DSL)) == 2


async def test_all_keyholders_are_nudged_when_there_is_no_dsl(school: Harness) -> None:
    tuesday = a_working_tuesday()
    await reported_and_referred(school, tuesday)  # by the DSL, who then steps down
    async with transaction(school.server.factory) as db:
        dsl = await db.scalar(select(Staff).where(Staff.slack_user_id == DSL))
        assert dsl is not None
        dsl.roles = "slt"  # no one has the dsl role now
    move_clock(school, at(tuesday, 10))
    assert await check(school) == 1
    for keyholder in (DEPUTY, HEAD, PASTORAL):
        assert len(nudges(school, keyholder)) == 1
    assert nudges(school, DSL) == [] and nudges(school, TEACHER) == []


# -- working hours ------------------------------------------------------------------------


async def test_no_nudge_outside_working_hours(db_url: str, tmp_path: Path) -> None:
    tuesday = a_working_tuesday()
    saturday = tuesday + dt.timedelta(days=4)
    closure = saturday + dt.timedelta(days=1)
    while not WORKING.is_working_day(closure):
        closure += dt.timedelta(days=1)
    england = holidays.country_holidays("GB", subdiv="ENG", years=[closure.year, closure.year + 1])
    bank_holiday = min(d for d in england if d > closure and d.weekday() < 5)
    toml = f'[working_time]\nclosures = ["{closure.isoformat()}"]\n'
    async with configured_school(db_url, tmp_path, toml) as school:
        working = school.server.school.working_time
        assert not working.is_working_day(closure)  # from the file
        referral_id = await reported_and_referred(school, tuesday)
        for instant in (
            at(tuesday, 18, 0),  # the working day has ended
            at(tuesday, 21, 30),  # evening
            at(tuesday + dt.timedelta(days=1), 7, 59),  # before it starts
            at(saturday, 10),  # weekend
            at(closure, 10),  # a school closure date in the config file
            at(bank_holiday, 10),  # a bank holiday
        ):
            move_clock(school, instant)
            assert await check(school) == 0, instant
        assert await nudge_rows(school) == []
        assert nudges(school, DSL) == []
        # The next working time after the bank holiday: nudged.
        move_clock(school, working.next_working_time(at(bank_holiday, 23)))
        assert await check(school) == 1
        assert [row[0] for row in await nudge_rows(school)] == [referral_id]


# -- restarts and replicas ------------------------------------------------------------------


async def test_a_nudge_due_while_the_server_was_down_goes_out_at_start(school: Harness) -> None:
    tuesday = a_working_tuesday()
    referral_id = await reported_and_referred(school, tuesday)  # due Tuesday 09:00
    assert await check(school) == 0  # Monday: not due
    # The server is down over the due time and comes back on Tuesday at 10:00. (The
    # running server's next check is minutes away, so none happens before it stops.)
    move_clock(school, at(tuesday, 10))
    await school.restart()
    # Nobody runs the check by hand: the scheduler runs it as the server starts.
    deadline = time.monotonic() + 10
    while not await nudge_rows(school):
        assert time.monotonic() < deadline, "no nudge after start-up"
        await asyncio.sleep(0.02)
    await school.delivered()
    assert [row[0] for row in await nudge_rows(school)] == [referral_id]
    assert len(nudges(school, DSL)) == 1
    # Then every check_every_minutes (5 by default), sending nothing more today (the
    # checks run in the process that leads, this one: `scheduler.leader`).
    scheduled = school.server.checks.get_job(OverdueReferrals.id)  # type: ignore[union-attr]
    assert scheduled is not None
    assert scheduled.trigger.interval == dt.timedelta(minutes=5)
    assert await check(school) == 0


async def test_two_servers_on_one_postgresql_send_each_nudge_once(
    school: Harness, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip(
            "several servers need PostgreSQL (FOR UPDATE SKIP LOCKED); "
            "on SQLite one server is supported, as the README says"
        )
    tuesday = a_working_tuesday()
    monday = tuesday - dt.timedelta(days=1)
    move_clock(school, at(monday, 9, 5))
    await report(school)
    ids = await refer(school, referred_at=at(monday, 9), count=50)
    move_clock(school, at(tuesday, 10))
    # Three replicas (each its own engine and pool) run the check at the same moment,
    # in small batches so that they compete for rows all the way through.
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        jobs = [
            OverdueReferrals(
                factory=session_factory(engine),
                config=school.server.school,
                public_url=school.settings.public_url,
                notify_outbox=school.server.worker.notify,
                clock=school.now,
                batch_size=4,
            )
            for engine in engines
        ]
        with capture_logs() as logs:
            first = await asyncio.gather(*(job.run() for job in jobs))
            again = await asyncio.gather(
                *(job.run() for job in jobs), school.server.overdue_job.run()
            )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(first) == 50 and sum(again) == 0
    # Shared by claiming rows, not by one replica failing on the unique key and giving up.
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    rows = await nudge_rows(school)
    assert sorted(row[0] for row in rows) == sorted(ids)
    async with school.server.factory() as db:
        queued = (
            await db.scalars(select(OutboxMessage).where(OutboxMessage.kind == outbox.NUDGE))
        ).all()
        events = await db.scalar(
            select(func.count()).select_from(ReferralEvent).where(ReferralEvent.kind == "nudged")
        )
    assert events == 50
    per_referral = Counter(m.payload["blocks"][-1]["block_id"] for m in queued)
    assert per_referral == Counter(f"referral-{i}" for i in ids)
    await school.delivered()
    sent = Counter(m["text"].split()[1] for m in nudges(school, DSL))
    assert sent == Counter(f"R{i}" for i in ids)


async def test_a_referral_claimed_by_one_replica_is_skipped_by_another(
    school: Harness, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("row claims (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite runs one server")
    tuesday = a_working_tuesday()
    monday = tuesday - dt.timedelta(days=1)
    move_clock(school, at(monday, 9, 5))
    await report(school)
    ids = await refer(school, referred_at=at(monday, 9), count=12)
    now = at(tuesday, 10)
    move_clock(school, now)
    engines = [create_engine(db_url) for _ in range(2)]
    factories: list[SessionFactory] = [session_factory(engine) for engine in engines]
    config, url = school.server.school, school.settings.public_url
    try:
        async with factories[0]() as first, first.begin():
            # The first replica has claimed five and is still sending them...
            assert (
                await referrals.nudge_overdue(
                    first, config=config, public_url=url, now=now, limit=5
                )
                == 5
            )
            # ...when the second runs: it neither waits for them nor nudges them again.
            async with factories[1]() as second, second.begin():
                nudged = await asyncio.wait_for(
                    referrals.nudge_overdue(second, config=config, public_url=url, now=now),
                    timeout=10,
                )
            assert nudged == 7
        async with factories[1]() as third, third.begin():
            assert await referrals.nudge_overdue(third, config=config, public_url=url, now=now) == 0
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(row[0] for row in await nudge_rows(school)) == sorted(ids)


# -- App Home -------------------------------------------------------------------------------


async def test_app_home_lists_overdue_referrals_for_keyholders_only(school: Harness) -> None:
    tuesday = a_working_tuesday()
    overdue = await reported_and_referred(school, tuesday)
    [not_due] = await refer(
        school, referred_at=at(tuesday - dt.timedelta(days=1), 9), agency="CAMHS"
    )
    move_clock(school, at(tuesday + dt.timedelta(days=1), 10))
    for number, user in enumerate((DSL, TEACHER), start=1):
        response = await school.slack.event(
            {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
        )
        assert response.status == 200
        await school.standin.wait_for_calls("views.publish", number)
    keyholder = json.dumps(school.standin.home_views[DSL]["blocks"])
    assert "Overdue referrals" in keyholder
    assert f"*R{overdue}* on concern #1 to {MASH} is 1 working day overdue" in keyholder
    assert f"R{not_due}" not in keyholder  # CAMHS has 20 working days
    assert "hungry" not in keyholder
    teacher = json.dumps(school.standin.home_views[TEACHER]["blocks"])
    assert "Overdue referrals" not in teacher and f"R{overdue}" not in teacher


async def test_the_server_gives_freed_memory_back_every_minute(harness: Harness) -> None:
    scheduler = harness.server.scheduler
    assert scheduler is not None
    job = scheduler.get_job("heap-trim")
    assert job is not None and job.trigger.interval == dt.timedelta(seconds=HEAP_TRIM_SECONDS)
    # This is Linux with glibc: the call is really made (False only where there is none).
    assert trim_heap() is True
