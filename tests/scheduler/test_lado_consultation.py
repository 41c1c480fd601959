"""The LADO consultation an allegation opens (issue 12), on both databases: due in one
working day, nudged to the allegations manager only (never the DSLs: the adult may be
one) until it is recorded as held, or as not needed with a reason."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from store.enums import ReferralStatus
from store.models import Nudge, Referral
from testing.harness import Harness
from tests.handlers.test_allegations import ALLEGATION, allege
from tests.support.clock import WORKING, at, move_clock
from tests.support.school import CLASS_TEACHER, DEPUTY, DSL, HEAD, PASTORAL, TA, name_of
from tests.support.web import People


def next_working_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while not WORKING.is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def consultation_nudges(school: Harness, user: str) -> list[dict[str, object]]:
    return [
        m
        for m in school.standin.messages_for_user(user)
        if "LADO consultation" in str(m.get("text", ""))
    ]


async def consultation(school: Harness) -> Referral:
    async with school.server.factory() as db:
        found = await db.scalar(select(Referral))
    assert found is not None
    return found


async def check(school: Harness) -> int:
    nudged = await school.server.overdue_job.run()
    await school.delivered()
    return nudged


async def test_the_consultation_is_nudged_to_the_manager_until_not_needed(
    school: Harness,
) -> None:
    response = await allege(school, TA, DEPUTY)
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()
    referral = await consultation(school)
    assert referral.status == ReferralStatus.CONSULT and referral.timescale == "1 working day"
    assert referral.due_at == WORKING.add_working_days(referral.referred_at, 1)

    # Not yet due: nothing.
    assert await check(school) == 0
    # The working day after it fell due, at 10:00: the head is nudged, nobody else.
    day = next_working_day(referral.due_at.astimezone(WORKING.zone).date())
    move_clock(school, at(day, 10))
    assert await check(school) == 1
    [nudge] = consultation_nudges(school, HEAD)
    assert "concern #1" in str(nudge["text"]) and "overdue" in str(nudge["text"])
    for other in (DSL, DEPUTY, PASTORAL, TA, CLASS_TEACHER):
        assert consultation_nudges(school, other) == []
        assert (
            not [m for m in school.standin.messages_for_user(other) if "#1" in str(m.get("text"))]
            or other == TA
        )  # the reporter's own receipt
    traffic = "\n".join(json.dumps(c.params) for c in school.standin.calls)
    assert name_of(DEPUTY) not in traffic and ALLEGATION not in traffic
    # Once a working day.
    assert await check(school) == 0

    # The author may not record it; the head records that no referral is needed, and why.
    people = People(school)
    key = f"outcome-{referral.id}"
    async with people.signed_in(TA) as author:
        await author.get("/incidents/1")
        status, body = await author.post(
            "/incidents/1/actions", {"text": "Not needed.", key: "not_needed"}
        )
        # Not offered to the author; forged, it is the one 404 (audited as refused).
        assert status == 404 and "Only the allegations manager" not in body
    async with people.signed_in(HEAD) as head:
        status, body = await head.get("/incidents/1")
        assert "No referral needed" in body
        status, body = await head.post(
            "/incidents/1/actions",
            {"text": "Discussed with HR: the mark was from a playground fall.", key: "not_needed"},
        )
        assert status == 200, body
    assert (await consultation(school)).status == ReferralStatus.CLOSED

    move_clock(school, at(next_working_day(day), 10))
    assert await check(school) == 0
    assert len(consultation_nudges(school, HEAD)) == 1
    async with school.server.factory() as db:
        assert len(list(await db.scalars(select(Nudge)))) == 1


async def test_recording_the_consultation_stops_the_nudges(school: Harness) -> None:
    response = await allege(school, TA, CLASS_TEACHER)
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()
    referral = await consultation(school)
    people = People(school)
    async with people.signed_in(HEAD) as head:
        await head.get("/incidents/1")
        status, body = await head.post(
            "/incidents/1/actions",
            {
                "text": "Rang the LADO; strategy meeting agreed.",
                f"outcome-{referral.id}": "consulted",
            },
        )
        assert status == 200 and "Consultation held" in body
    assert (await consultation(school)).status == ReferralStatus.RESPONDED
    day = next_working_day(referral.due_at.astimezone(WORKING.zone).date())
    move_clock(school, at(day, 10))
    assert await check(school) == 0
    assert consultation_nudges(school, HEAD) == []
