"""Who may see an incident in the web view, on both databases.

An incident is visible to its author, the staff alerted on it or invited later, and every
key-holder of its school. To anyone else — another member of staff, or anyone at another
school — `/incidents/{n}` and every POST under it answer exactly what a number that does
not exist answers: the same 404 page, and nothing changes. The refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import func, select, update
from yarl import URL

from handlers.web.security import cookie_name
from store import access, incidents, websessions, workspaces
from store.models import (
    AuditEvent,
    Incident,
    IncidentAction,
    IncidentInvite,
    ReadReceipt,
    Staff,
)
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.records import pupil_at_another_school, staff_member
from tests.support.school import (
    CLASS_TEACHER,
    DSL,
    OFFICE,
    OTHER_TEAM_ID,
    TA,
    TEACHER,
    TEACHER_3A,
)
from tests.support.slack import file_concern
from tests.support.web import signed_in

# The people: TEACHER (4B) is the author below; CLASS_TEACHER (also 4B) is alerted as class
# teacher; TEACHER_3A is not alerted on a 4B concern; TA is invited later; OFFICE is never
# told; DSL is a key-holder.
NARRATIVE = "Arrived without a coat again and said there is no heating at home."
OTHER_NARRATIVE = "A record that belongs to another school entirely."

# TEACHER's well-being concern about a 4B pupil, filed in Slack (author and pupil may vary).
report = functools.partial(file_concern, narrative=NARRATIVE, categories=["Well-being"])


@dataclass
class OtherSchool:
    keyholder: Staff
    teacher: Staff
    number: int


async def other_school(harness: Harness) -> OtherSchool:
    """A second school on the same deployment, with its own staff and incident #7.

    Its staff have no Slack ids, so nothing is queued for the stand-in's workspace.
    """
    async with harness.server.factory() as db, db.begin():
        pupil = await pupil_at_another_school(db, cipher=harness.server.cipher)
        school = await workspaces.ensure(db, team_id=OTHER_TEAM_ID, name="Another School")
        school.next_incident_number = 7
        keyholder = Staff(
            workspace_id=school.id,
            email="dsl@other.example",
            name="Olwen Other",
            roles="dsl",
            slack_user_id=None,
        )
        teacher = Staff(
            workspace_id=school.id,
            email="teacher@other.example",
            name="Owain Other",
            roles="teacher",
            slack_user_id=None,
        )
        db.add_all([keyholder, teacher])
        await db.flush()
        filed = await incidents.submit_concern(
            db,
            workspace_id=school.id,
            author=teacher,
            draft=incidents.ConcernDraft(
                pupil_id=str(pupil.id),
                narrative=OTHER_NARRATIVE,
                categories=["Behaviour"],
                parents_contacted="yes",
            ),
            catalogue=harness.server.catalogue,
            cipher=harness.server.cipher,
            public_url=harness.settings.public_url,
            now=harness.now(),
        )
    return OtherSchool(keyholder, teacher, filed.number)


async def session_for(harness: Harness, staff: Staff) -> WebUser:
    """A fully signed-in browser for someone Slack sign-in cannot reach in the stand-in.

    The session is made by the same store call sign-in uses, then the cookie is set.
    """
    async with harness.server.factory() as db, db.begin():
        raw, _row = await websessions.create(
            db,
            staff=staff,
            via="link",
            max_age=dt.timedelta(hours=1),
            now=harness.now(),
            second_factor=True,
        )
    user = WebUser(harness.server.url, harness.now)
    user.http.cookie_jar.update_cookies(
        {cookie_name(harness.server.web_deps): raw}, URL(harness.server.url)
    )
    return user


async def changes(school: Harness) -> dict[str, int]:
    """What a refused POST must not have changed."""
    async with school.server.factory() as db:
        return {
            model.__tablename__: int(await db.scalar(select(func.count()).select_from(model)) or 0)
            for model in (IncidentAction, IncidentInvite, ReadReceipt)
        }


async def assert_hidden(user: WebUser, number: int, *, missing: int = 999) -> None:
    """GET and every POST on `number` answer exactly as for a number that does not exist."""
    status, body = await user.get(f"/incidents/{number}")
    missing_status, missing_body = await user.get(f"/incidents/{missing}")
    assert status == missing_status == 404
    assert body == missing_body
    assert "Not found" in body and NARRATIVE not in body and OTHER_NARRATIVE not in body
    for suffix, data in (
        ("read", {}),
        ("actions", {"text": "Tried to add to it."}),
        ("invite", {"staff": "1"}),
    ):
        # Each page carries the session's csrf token, so each POST passes the middleware.
        status, body = await user.post(f"/incidents/{number}/{suffix}", data)
        missing_status, missing_body = await user.post(f"/incidents/{missing}/{suffix}", data)
        assert status == missing_status == 404, suffix
        assert body == missing_body, suffix


async def assert_allowed(user: WebUser, number: int, *, text: str) -> None:
    status, body = await user.get(f"/incidents/{number}")
    assert status == 200, body
    assert NARRATIVE in body
    status, body = await user.post(f"/incidents/{number}/actions", {"text": text})
    assert status == 200 and user.last_url.split("#")[0].endswith(f"/incidents/{number}")
    assert text in body
    status, _ = await user.post(f"/incidents/{number}/read")
    assert status == 200


# -- over HTTP ---------------------------------------------------------------------------


async def test_author_alerted_invited_and_keyholder_may_see_and_act(school: Harness) -> None:
    await report(school)
    # A key-holder appointed after the concern was filed was never alerted on it:
    # key-holders see it by their role.
    async with school.server.factory() as db, db.begin():
        await db.execute(
            update(Staff).where(Staff.slack_user_id == OFFICE).values(roles="keyholder")
        )
    async with signed_in(school, TEACHER) as author:
        await assert_allowed(author, 1, text="Author follow-up.")
        async with signed_in(school, CLASS_TEACHER) as alerted:
            await assert_allowed(alerted, 1, text="Class teacher note.")
        async with signed_in(school, OFFICE) as keyholder:
            await assert_allowed(keyholder, 1, text="New key-holder note.")
        async with signed_in(school, TA) as guest:
            await assert_hidden(guest, 1)
            await author.get("/incidents/1")
            ta = await staff_member(school, TA)
            status, _ = await author.post("/incidents/1/invite", {"staff": str(ta.id)})
            assert status == 200
            await assert_allowed(guest, 1, text="Invited colleague note.")


async def test_other_staff_get_the_same_404_as_a_missing_number(school: Harness) -> None:
    await report(school)
    before = await changes(school)
    for person in (TEACHER_3A, OFFICE):
        async with signed_in(school, person) as user:
            await assert_hidden(user, 1)
    assert await changes(school) == before


async def test_the_refusal_is_in_the_audit_log(school: Harness) -> None:
    await report(school)
    async with signed_in(school, OFFICE) as user:
        await user.get("/incidents/1")
        await user.get("/incidents/999")
    office = await staff_member(school, OFFICE)
    async with school.server.factory() as db:
        incident = await db.scalar(select(Incident).where(Incident.number == 1))
        refused = (
            await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "incident.view", AuditEvent.actor_id == office.id)
                .order_by(AuditEvent.id)
            )
        ).all()
    assert incident is not None
    assert [(e.outcome, e.incident_id, e.detail) for e in refused] == [
        ("refused", incident.id, "#1"),
        ("refused", None, "#999"),
    ]
    assert all(e.ip for e in refused)


async def test_another_school_cannot_see_across_and_is_not_seen(school: Harness) -> None:
    await report(school)
    other = await other_school(school)
    assert other.number == 7
    before = await changes(school)
    # Their DSL sees their own #7, but our #1 is as missing as #999.
    user = await session_for(school, other.keyholder)
    try:
        status, body = await user.get(f"/incidents/{other.number}")
        assert status == 200 and OTHER_NARRATIVE in body
        await assert_hidden(user, 1)
    finally:
        await user.close()
    # Our DSL sees everything here, and nothing there.
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/incidents/1")
        assert status == 200 and NARRATIVE in body
        await assert_hidden(dsl, other.number)
        # Their staff cannot be reached from here either.
        await dsl.get("/staff")
        status, _ = await dsl.post(f"/staff/{other.teacher.id}/totp-reset")
        assert status == 404
    assert await changes(school) == before


async def test_a_bad_number_is_the_same_404(school: Harness) -> None:
    await report(school)
    async with signed_in(school, DSL) as dsl:
        _, missing = await dsl.get("/incidents/999")
        for path in ("/incidents/0", "/incidents/abc", "/incidents/99999999999", "/incidents/-1"):
            status, body = await dsl.get(path)
            assert (status, body) == (404, missing), path


# -- the rule itself, without HTTP ------------------------------------------------------


async def test_visible_incidents_over_the_same_matrix(school: Harness) -> None:
    await report(school)  # #1: TEACHER about a 4B pupil
    await report(school, author=TEACHER_3A, pupil_query="Z00000000003D")  # #2: 3A pupil
    other = await other_school(school)
    async with school.server.factory() as db, db.begin():
        ta = await db.scalar(select(Staff).where(Staff.slack_user_id == TA))
        author = await db.scalar(select(Staff).where(Staff.slack_user_id == TEACHER))
        first = await db.scalar(select(Incident).where(Incident.number == 1))
        assert ta is not None and author is not None and first is not None
        db.add(
            IncidentInvite(
                incident_id=first.id,
                staff_id=ta.id,
                invited_by_id=author.id,
                created_at=school.now(),
            )
        )

    async def numbers(slack_id: str | None = None, staff: Staff | None = None) -> set[int]:
        viewer = staff or await staff_member(school, slack_id or "")
        async with school.server.factory() as db:
            rows = await db.scalars(access.visible_incidents(viewer))
            found = {i.number for i in rows}
            for number in (1, 2, other.number, 999):
                single = await access.visible_incident(db, viewer=viewer, number=number)
                assert (single is not None) == (number in found), (slack_id, number)
        return found

    assert await numbers(TEACHER) == {1}  # author of #1; #2 is a 3A concern
    assert await numbers(CLASS_TEACHER) == {1}  # alerted as 4B class teacher
    assert await numbers(TEACHER_3A) == {2}  # author of #2, not alerted on #1
    assert await numbers(TA) == {1}  # invited later
    assert await numbers(OFFICE) == set()  # never told
    assert await numbers(DSL) == {1, 2}  # key-holder: all of this school, none of the other
    assert await numbers(staff=other.keyholder) == {other.number}
    assert await numbers(staff=other.teacher) == {other.number}

    # Someone who has left sees nothing, even what they wrote.
    async with school.server.factory() as db, db.begin():
        await db.execute(update(Staff).where(Staff.slack_user_id == TEACHER).values(active=False))
    assert await numbers(TEACHER) == set()
