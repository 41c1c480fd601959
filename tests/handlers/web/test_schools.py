"""A school's settings page (its key-holders only) and the trust page (trust leads only),
with a second school on the same deployment."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from store.enums import AuditOutcome
from store.models import AuditEvent, Pupil, SchoolSettings, Staff
from testing.harness import Harness
from tests.handlers.web.test_access import NARRATIVE, OTHER_NARRATIVE, other_school, session_for
from tests.support.records import audit_events, staff_member
from tests.support.school import DSL, TEACHER
from tests.support.slack import file_concern
from tests.support.web import main_of, shown, signed_in

AGENCIES = """
[[agencies]]
name = "Police"
respond_within = "4 working hours"

[[agencies]]
name = "LADO"
respond_within = "1 working day"

[[agencies]]
name = "Larkspur family support"
respond_within = "3 working days"
"""


async def rows(school: Harness) -> int:
    async with school.server.factory() as db:
        return int(await db.scalar(select(func.count()).select_from(SchoolSettings)) or 0)


async def test_a_keyholders_edit_changes_their_school_alone_and_is_audited(
    school: Harness,
) -> None:
    other = await other_school(school)
    schools = school.server.schools
    here = school.workspace_id
    before_other = schools.config(other.keyholder.workspace_id)
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/settings")
        assert status == 200 and "[working_time]" in shown(body)
        assert 'name = "CAMHS"' in shown(body)  # today's agencies, as the form starts
        status, body = await dsl.post("/settings", {"settings": "[working_time]\nday_ends = 7\n"})
        assert status == 400 and "settings page: working_time.day_ends" in shown(body)
        assert await rows(school) == 0
        status, body = await dsl.post("/settings", {"settings": AGENCIES})
        assert status == 200 and "Saved." in body
        status, body = await dsl.get(f"/incidents/{await _filed(school)}")
        assert status == 200 and "Larkspur family support" in body  # offered at once
    assert schools.config(here).agency_names == ("Police", "LADO", "Larkspur family support")
    assert schools.config(other.keyholder.workspace_id) is before_other
    async with school.server.factory() as db:
        saved = await db.get(SchoolSettings, here)
        assert saved is not None and saved.version == 1
        assert saved.updated_by_id == (await staff_member(school, DSL)).id
    edits = await audit_events(school, "settings.edit")
    assert [(e.outcome, e.workspace_id) for e in edits] == [
        (AuditOutcome.FAILED, here),
        (AuditOutcome.OK, here),
    ]
    assert edits[0].detail == "invalid: working_time.day_ends"
    assert edits[1].detail == "v1: agencies"
    # The other school's key-holder sees its own settings, untouched.
    user = await session_for(school, other.keyholder)
    try:
        status, body = await user.get("/settings")
        assert status == 200 and "Larkspur family support" not in body
    finally:
        await user.close()


async def _filed(school: Harness) -> int:
    await file_concern(school, narrative=NARRATIVE, categories=["Well-being"])
    return 1


async def test_only_keyholders_reach_the_settings_page(school: Harness) -> None:
    async with signed_in(school, TEACHER) as teacher:
        for status, _ in (
            await teacher.get("/settings"),
            await teacher.post("/settings", {"settings": AGENCIES}),
        ):
            assert status == 404
    assert await rows(school) == 0
    refused = await audit_events(school, "settings.edit")
    assert [e.outcome for e in refused] == [AuditOutcome.REFUSED]


async def _trust_lead(school: Harness) -> Staff:
    async with school.server.factory() as db, db.begin():
        lead = Staff(
            workspace_id=school.workspace_id,
            email="trust.lead@larkspur.example",
            name="Tamsin Trust",
            roles="teacher;trust_lead",
            slack_user_id=None,
        )
        db.add(lead)
    return lead


def _category_counts(page: str) -> dict[str, list[str]]:
    """The trust page's categories table: each category's count per school."""
    table = re.sub(r"\s+", "", page.split('id="trust-categories"', 1)[1].split("</table>", 1)[0])
    return {
        name: re.findall(r"<td>(\d+)</td>", cells)
        for name, cells in re.findall(r'<thscope="row">([^<]+)</th>((?:<td>\d+</td>)+)', table)
    }


async def test_the_trust_counts_a_recategorised_concern_under_its_category_now(
    school: Harness,
) -> None:
    await file_concern(school, categories=["Well-being"])  # #1
    await file_concern(school, categories=["Well-being"])  # #2, re-categorised below
    async with signed_in(school, DSL) as dsl:
        status, _ = await dsl.post(
            "/incidents/2/actions", {"text": "Really attendance.", "categories": "Attendance"}
        )
        assert status == 200
    user = await session_for(school, await _trust_lead(school))
    try:
        status, body = await user.get("/trust")
    finally:
        await user.close()
    assert status == 200
    assert _category_counts(shown(main_of(body))) == {"Attendance": ["1"], "Well-being": ["1"]}


async def test_a_trust_lead_sees_counts_across_schools_and_nothing_more(school: Harness) -> None:
    await file_concern(school, narrative=NARRATIVE, categories=["Well-being"])  # #1, by TEACHER
    other = await other_school(school)  # #7 at Another School, Behaviour
    async with school.server.factory() as db, db.begin():
        lead = Staff(
            workspace_id=school.workspace_id,
            email="trust.lead@larkspur.example",
            name="Tamsin Trust",
            roles="teacher;trust_lead",
            slack_user_id=None,
        )
        db.add(lead)
        await db.flush()
        pupils = [f"{p.forename} {p.surname}" for p in (await db.scalars(select(Pupil))).all()]
        names = [s.name for s in (await db.scalars(select(Staff))).all() if s.id != lead.id]
    user = await session_for(school, lead)
    try:
        status, body = await user.get("/trust")
        assert status == 200
        page = shown(main_of(body))
        assert "Another School" in page and "Well-being" in page and "Behaviour" in page
        for secret in (NARRATIVE, OTHER_NARRATIVE, *pupils, *names):
            assert secret not in page
        # Both schools' rows: one concern each, open.
        cells = re.sub(r"\s+", "", page)
        assert cells.count("<td>1</td><td>1</td><td>0</td><td>0</td><td>0</td>") == 2
        for number in (1, other.number):
            status, body = await user.get(f"/incidents/{number}")
            assert status == 404 and NARRATIVE not in body and OTHER_NARRATIVE not in body
    finally:
        await user.close()
    async with signed_in(school, DSL) as dsl:  # a DSL is no trust lead
        status, body = await dsl.get("/trust")
        assert status == 404 and "Another School" not in body
    async with school.server.factory() as db:
        seen = (
            await db.execute(
                select(AuditEvent.actor_id, AuditEvent.outcome).where(
                    AuditEvent.action == "trust.view"
                )
            )
        ).all()
    assert [outcome for _, outcome in seen] == [AuditOutcome.OK, AuditOutcome.REFUSED]
