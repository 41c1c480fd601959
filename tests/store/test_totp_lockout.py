"""The authenticator code cannot be guessed slowly, in parallel, or used twice at once.

Before: five guesses a minute for ever, no lockout, nobody told; ten parallel guesses
had 7-8 evaluated instead of 5; two sign-ins sending the same valid code at the same
moment were both accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pyotp
import pytest
from sqlalchemy import func, select

from store import totp
from store.db import SessionFactory
from store.models import AuditEvent, AuthFailure, OutboxMessage, Staff
from store.staff import get_staff_by_slack_id
from testing.harness import Harness
from tests.support.school import DSL, KEYHOLDERS, TEACHER

NOON = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)


async def enrolled(school: Harness, slack_id: str = TEACHER) -> tuple[Staff, str]:
    """A member of staff with a confirmed authenticator, and its secret."""
    async with school.server.factory() as db, db.begin():
        staff = await get_staff_by_slack_id(
            db, workspace_id=school.workspace_id, slack_user_id=slack_id
        )
        assert staff is not None
        secret = await totp.start_enrolment(db, staff=staff, cipher=school.server.cipher)
        enrolment = await totp.enrolment(db, staff_id=staff.id)
        assert enrolment is not None
        enrolment.confirmed_at = NOON - dt.timedelta(days=1)
    return staff, secret


async def attempt(
    factory: SessionFactory, school: Harness, staff: Staff, code: str, now: dt.datetime
) -> totp.Verification:
    """One sign-in's code, in its own transaction (as one request)."""
    async with factory() as db, db.begin():
        return await totp.verify(db, staff=staff, code=code, cipher=school.server.cipher, now=now)


def wrong(secret: str, now: dt.datetime) -> str:
    right = pyotp.TOTP(secret).at(now)
    return "000000" if right != "000000" else "111111"


async def count(factory: SessionFactory, model: type, *where: object) -> int:
    async with factory() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_parallel_guesses_are_counted_one_after_another(school: Harness) -> None:
    staff, secret = await enrolled(school)
    factory = school.server.factory
    results = await asyncio.gather(
        *(attempt(factory, school, staff, wrong(secret, NOON), NOON) for _ in range(12))
    )
    reasons = [r.reason for r in results]
    assert reasons.count(totp.Refusal.INVALID) == totp.MAX_FAILURES  # 5 evaluated, no more
    assert reasons.count(totp.Refusal.THROTTLED) == 12 - totp.MAX_FAILURES
    assert await count(factory, AuthFailure) == totp.MAX_FAILURES


async def test_the_same_valid_code_sent_twice_at_once_is_accepted_once(school: Harness) -> None:
    staff, secret = await enrolled(school)
    code = pyotp.TOTP(secret).at(NOON)
    for round_ in range(5):  # each round a fresh time step, both requests at once
        now = NOON + dt.timedelta(seconds=30 * round_)
        code = pyotp.TOTP(secret).at(now)
        first, second = await asyncio.gather(
            attempt(school.server.factory, school, staff, code, now),
            attempt(school.server.factory, school, staff, code, now),
        )
        assert sorted([first.ok, second.ok]) == [False, True]
        refused = first if not first.ok else second
        assert refused.reason == totp.Refusal.REPLAYED


async def test_a_day_of_slow_guessing_locks_the_sign_in_until_a_key_holder_unlocks_it(
    school: Harness,
) -> None:
    staff, secret = await enrolled(school)
    factory = school.server.factory
    now = NOON
    results = []
    for guess in range(totp.DAILY_LIMIT):
        if guess and guess % totp.MAX_FAILURES == 0:
            now += totp.WINDOW + dt.timedelta(seconds=1)  # as slowly as the throttle allows
        results.append(await attempt(factory, school, staff, wrong(secret, now), now))
    assert [r.reason for r in results[:-1]] == [totp.Refusal.INVALID] * (totp.DAILY_LIMIT - 1)
    assert results[-1].reason == totp.Refusal.LOCKED

    # Locked: even the right code is refused, the next day too.
    tomorrow = now + dt.timedelta(days=1)
    right = await attempt(factory, school, staff, pyotp.TOTP(secret).at(tomorrow), tomorrow)
    assert (right.ok, right.reason) == (False, totp.Refusal.LOCKED)

    # The person was told twice (at WARN_AFTER and at the lockout), each key-holder once.
    notices = await dms(factory)
    to_person = [text for channel, text in notices if channel == TEACHER]
    assert len(to_person) == 2
    assert f"{totp.WARN_AFTER} wrong authenticator codes" in to_person[0]
    assert "locked until a key-holder unlocks it" in to_person[1]
    locked_notices = {channel for channel, text in notices if "'s Vigil sign-in is locked" in text}
    assert locked_notices == set(KEYHOLDERS)
    assert await count(factory, AuditEvent, AuditEvent.action == "totp.locked") == 1

    async with factory() as db, db.begin():
        dsl = await get_staff_by_slack_id(db, workspace_id=school.workspace_id, slack_user_id=DSL)
        assert dsl is not None
        assert await totp.unlock(db, staff_id=staff.id, by=dsl, now=tomorrow) is True
    later = tomorrow + dt.timedelta(seconds=60)
    again = await attempt(factory, school, staff, pyotp.TOTP(secret).at(later), later)
    assert again.ok
    assert await count(factory, AuditEvent, AuditEvent.action == "totp.unlock") == 1


async def dms(factory: SessionFactory) -> list[tuple[str, str]]:
    async with factory() as db:
        rows = await db.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "notice").order_by(OutboxMessage.id)
        )
        return [(row.channel, row.payload["text"]) for row in rows]


@pytest.mark.parametrize("failures", [totp.WARN_AFTER - 1])
async def test_a_few_wrong_codes_tell_nobody(school: Harness, failures: int) -> None:
    staff, secret = await enrolled(school)
    now = NOON
    for guess in range(failures):
        if guess and guess % totp.MAX_FAILURES == 0:
            now += totp.WINDOW + dt.timedelta(seconds=1)
        await attempt(school.server.factory, school, staff, wrong(secret, now), now)
    assert await dms(school.server.factory) == []
