"""Who sees an allegation about an adult (issue 12), on both databases.

The adult named never sees it nor learns it exists, even as a key-holder: 404, and nothing
in My alerts, App Home, reports and their CSVs, the pupil search, the chronology, the audit
log or the referral board. Other key-holders see it only once the allegations manager (the
head) shares it; nobody may share it with the adult.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from store.models import Staff
from testing.harness import Harness
from testing.webclient import WebUser
from tests.handlers.test_allegations import ALLEGATION, allege
from tests.support.clock import LONDON
from tests.support.records import pupil_by_upn, staff_member
from tests.support.school import CLASS_TEACHER, DEPUTY, DSL, HEAD, PUPIL_4B, TA
from tests.support.web import People

LINK = 'href="/incidents/1"'


async def filed(school: Harness, author: str, adult: str) -> None:
    response = await allege(school, author, adult)
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()


async def pupil_id(school: Harness) -> int:
    async with school.server.factory():
        found = (await pupil_by_upn(school, PUPIL_4B)).id
    assert found is not None
    return int(found)


async def home_of(school: Harness, user: str, count: int) -> str:
    response = await school.slack.event(
        {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
    )
    assert response.status == 200
    await school.standin.wait_for_calls("views.publish", count)
    return json.dumps(school.standin.home_views[user]["blocks"])


async def assert_nowhere(school: Harness, user: WebUser, *, keyholder: bool) -> None:
    """Nothing of incident #1 on any page this person can open."""
    status, body = await user.get("/incidents/1")
    _, missing = await user.get("/incidents/999")
    assert status == 404 and body == missing
    status, body = await user.get("/alerts")
    assert status == 200 and LINK not in body and ALLEGATION not in body
    if not keyholder:
        return
    status, body = await user.get("/audit")
    assert status == 200
    assert LINK not in body and "incident.create" not in body and "#1<" not in body
    status, body = await user.get("/audit?incident=1")
    assert "incident.create" not in body
    status, body = await user.get("/reports")
    assert status == 200 and "Behaviour" not in body
    status, body = await user.get("/reports/categories.csv")
    assert status == 200 and "Behaviour" not in body
    status, body = await user.get("/reports/governors")
    assert status == 200 and "Behaviour" not in body and "LADO" not in body
    status, body = await user.get(f"/pupils/{await pupil_id(school)}")
    assert status == 200 and ALLEGATION not in body and LINK not in body
    status, body = await user.get(f"/pupils?q={PUPIL_4B}")
    assert status == 200 and "<td>1</td>" not in body
    status, body = await user.get("/referrals")
    assert status == 200 and "LADO" not in body


async def test_the_class_teacher_named_sees_nothing(school: Harness) -> None:
    await filed(school, TA, CLASS_TEACHER)
    people = People(school)
    async with people.signed_in(CLASS_TEACHER) as teacher:
        await assert_nowhere(school, teacher, keyholder=False)
    assert "#1" not in await home_of(school, CLASS_TEACHER, 1)
    async with people.signed_in(HEAD) as head:
        status, body = await head.get("/incidents/1")
        assert status == 200 and ALLEGATION in body and "Consultation due" in body
        assert "Allegation about</dt>" in body and "A member of staff: Hana Jones" in body


async def test_a_deputy_dsl_named_sees_nothing_anywhere(school: Harness) -> None:
    await filed(school, TA, DEPUTY)
    people = People(school)
    async with people.signed_in(DEPUTY) as deputy:
        # Reading the head's view of the pages first shows what the deputy's would hold.
        await assert_nowhere(school, deputy, keyholder=True)
    assert "#1" not in await home_of(school, DEPUTY, 1)
    async with people.signed_in(HEAD) as head:
        status, body = await head.get("/reports")
        assert "Behaviour" in body  # the manager's report counts it
        status, body = await head.get(f"/pupils/{await pupil_id(school)}")
        assert ALLEGATION in body
        status, body = await head.get("/audit")
        assert "incident.create" in body


async def test_other_keyholders_see_it_once_the_manager_shares_it(school: Harness) -> None:
    await filed(school, TA, DEPUTY)
    people = People(school)
    dsl, deputy = await staff_member(school, DSL), await staff_member(school, DEPUTY)
    async with people.signed_in(DSL) as keyholder:
        await assert_nowhere(school, keyholder, keyholder=True)
    async with people.signed_in(TA) as author:
        await author.get("/incidents/1")
        status, body = await author.post("/incidents/1/invite", {"staff": str(dsl.id)})
        assert "Only the allegations manager can share" in body
    async with people.signed_in(HEAD) as head:
        await head.get("/incidents/1")
        status, body = await head.post("/incidents/1/invite", {"staff": str(deputy.id)})
        assert "cannot be shared with the person it is about" in body
        status, body = await head.post("/incidents/1/invite", {"staff": str(dsl.id)})
        assert status == 200 and "cannot be shared" not in body
        # Nor alerted about an action.
        status, body = await head.post(
            "/incidents/1/actions", {"text": "Spoke to HR.", "alert": str(deputy.id)}
        )
        assert "cannot be alerted" in body
    async with people.signed_in(DSL) as keyholder:
        status, body = await keyholder.get("/incidents/1")
        assert status == 200 and ALLEGATION in body
    async with people.signed_in(DEPUTY) as named:
        await assert_nowhere(school, named, keyholder=True)
    async with school.server.factory() as db:
        rows = await db.scalars(select(Staff.slack_user_id))
        assert DEPUTY in set(rows)
    assert not [c for c in school.standin.calls if c.params.get("channel") == DEPUTY]


async def test_a_past_terms_kept_report_never_counts_an_allegation_to_those_who_may_not_see_it(
    school: Harness,
) -> None:
    """A range that has ended is counted once and kept (`store.reports.cache`), per
    viewer: the adult named never has it counted, and once a key-holder's access is
    withdrawn their kept figures are counted again without it."""
    await filed(school, TA, DEPUTY)
    dsl = await staff_member(school, DSL)
    day = school.now().astimezone(LONDON).date().isoformat()
    people = People(school)
    async with people.signed_in(HEAD) as head:
        await head.get("/incidents/1")
        status, _ = await head.post("/incidents/1/invite", {"staff": str(dsl.id)})
        assert status == 200
    school.clock_offset += dt.timedelta(days=200)  # that day's term is long over
    past = {"from": day, "to": day}
    async with people.signed_in(DEPUTY) as named:
        for _ in range(2):
            status, body = await named.get("/reports", params=past)
            assert status == 200 and "Behaviour" not in body
    async with people.signed_in(DSL) as keyholder:
        for _ in range(2):  # counted, then kept
            status, body = await keyholder.get("/reports", params=past)
            assert status == 200 and "Behaviour" in body
    async with people.signed_in(HEAD) as head:
        status, body = await head.get("/reports", params=past)
        assert "Behaviour" in body  # the manager's own report counts it
        await head.get("/incidents/1")
        status, _ = await head.post("/incidents/1/withdraw", {"staff": str(dsl.id)})
        assert status == 200
    async with people.signed_in(DSL) as keyholder:
        status, body = await keyholder.get("/reports", params=past)
        assert status == 200 and "Behaviour" not in body
        _, body = await keyholder.get("/reports/categories.csv", params=past)
        assert "Behaviour" not in body
    async with people.signed_in(DEPUTY) as named:
        status, body = await named.get("/reports", params=past)
        assert status == 200 and "Behaviour" not in body
