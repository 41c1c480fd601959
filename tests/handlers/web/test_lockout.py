"""A sign-in locked after too many wrong authenticator codes, as the people involved see
it: the code page says so, the person is told in Slack at once, and a key-holder unlocks
it from the Staff page."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from store import totp, websessions
from store.db import transaction
from store.models import AuditEvent, Staff
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.school import DSL, TEACHER, seeded_school
from tests.support.web import People, shown


@pytest.fixture
async def slow_worker_school(db_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """The school, with a delivery worker that polls only once a minute: a DM arrives
    promptly only if whoever queued it woke the worker."""
    async with seeded_school(db_url, tmp_path, poll_interval=60.0) as harness:
        yield harness


async def staff_row(school: Harness, slack_id: str) -> Staff:
    async with school.server.factory() as db:
        staff = await db.scalar(select(Staff).where(Staff.slack_user_id == slack_id))
    assert staff is not None
    return staff


async def at_the_code_page(school: Harness, slack_id: str) -> WebUser:
    """Someone past the first step (a one-time link, by the server's clock), at the code
    page."""
    async with transaction(school.server.factory) as db:
        staff = await db.scalar(select(Staff).where(Staff.slack_user_id == slack_id))
        assert staff is not None
        token = await websessions.issue_login_link(db, staff=staff, now=school.now())
    user = WebUser(school.server.url, school.now)
    status, page = await user.use_login_link(f"{school.server.url}/login/{token}")
    assert status == 200 and "Enter your code" in page
    return user


async def dms_to(school: Harness, slack_id: str, text: str, *, within: float) -> list[str]:
    """The DMs to `slack_id` containing `text`, waiting up to `within` seconds for one."""
    deadline = time.monotonic() + within
    while True:
        found = [
            m.get("text", "")
            for m in school.standin.messages_for_user(slack_id)
            if text in m.get("text", "")
        ]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_wrong_codes_lock_the_sign_in_the_page_says_so_and_a_key_holder_unlocks_it(
    slow_worker_school: Harness,
) -> None:
    school = slow_worker_school
    people = People(school)
    async with people.signed_in(TEACHER):  # enrolled once, long ago
        pass
    secret = people.secrets[TEACHER]
    teacher = await at_the_code_page(school, TEACHER)
    teacher.secret = secret
    try:
        statuses: list[int] = []
        for guess in range(totp.DAILY_LIMIT):
            if guess and guess % totp.MAX_FAILURES == 0:
                school.clock_offset += totp.WINDOW + dt.timedelta(seconds=1)
            wrong = "000000" if teacher.code() != "000000" else "111111"
            status, page = await teacher.post("/totp", {"code": wrong})
            statuses.append(status)
            if guess == totp.WARN_AFTER - 1:
                # The person is told at once (the worker was woken), not at its next poll.
                told = await dms_to(school, TEACHER, "wrong authenticator codes", within=5)
                assert told and f"{totp.WARN_AFTER} wrong authenticator codes" in told[0]
        assert statuses == [400] * (totp.DAILY_LIMIT - 1) + [403]
        assert "Your sign-in is locked" in shown(page) and "Staff page" in shown(page)

        # Locked: even the right code is refused, with the same words.
        school.clock_offset += dt.timedelta(seconds=31)
        status, page = await teacher.post("/totp", {"code": teacher.code()})
        assert status == 403 and "Your sign-in is locked" in shown(page)
        await teacher.get("/alerts")
        assert teacher.last_url.endswith("/totp")
    finally:
        await teacher.close()
    locked = await dms_to(school, TEACHER, "locked until a key-holder unlocks it", within=5)
    assert locked

    target = await staff_row(school, TEACHER)
    async with people.signed_in(DSL) as dsl:
        status, page = await dsl.get("/staff")
        row = page[page.index(f'id="staff-{target.id}"') :]
        row = row[: row.index("</tr>")]
        assert "Locked" in row and f"/staff/{target.id}/totp-unlock" in row
        status, page = await dsl.post(f"/staff/{target.id}/totp-unlock")
        assert status == 200 and dsl.last_url.endswith(f"/staff?unlocked={target.id}")
        assert f"{target.name} can sign in again." in shown(page)
        row = page[page.index(f'id="staff-{target.id}"') :]
        assert "totp-unlock" not in row[: row.index("</tr>")]

    async with school.server.factory() as db:
        unlock = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "totp.unlock"))
        ).one()
    dsl_row = await staff_row(school, DSL)
    assert (unlock.actor_id, unlock.subject_id, unlock.outcome) == (dsl_row.id, target.id, "ok")
    assert unlock.ip == "127.0.0.1"

    # Unlocked: the right code works again.
    async with people.signed_in(TEACHER) as again:
        status, page = await again.get("/alerts")
        assert status == 200


async def test_unlocking_someone_of_another_school_or_no_one_is_the_404_and_audited(
    school: Harness,
) -> None:
    people = People(school)
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/staff")
        csrf = re.search(r'name="csrf" value="([^"]+)"', dsl.last_page)
        assert csrf is not None
        for path in ("/staff/999999/totp-unlock", "/staff/99999999999999999999/totp-unlock"):
            status, page = await dsl.post(path, {"csrf": csrf.group(1)})
            assert status == 404, path
    async with school.server.factory() as db:
        refused = (
            await db.scalars(
                select(AuditEvent.detail).where(
                    AuditEvent.action == "totp.unlock", AuditEvent.outcome == "refused"
                )
            )
        ).all()
    assert refused == ["no staff 999999 here", "not a staff id"]


async def test_only_key_holders_may_unlock(school: Harness) -> None:
    people = People(school)
    target = await staff_row(school, TEACHER)
    async with people.signed_in(TEACHER) as teacher:
        status, _ = await teacher.post(f"/staff/{target.id}/totp-unlock")
    assert status == 404
    async with school.server.factory() as db:
        refusal = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "totp.unlock"))
        ).one()
    assert refusal.outcome == "refused" and refusal.detail == "not a key-holder"
