"""Casework in the web view (DESIGN §12), end to end on both databases: closing a concern
with an outcome and a reason, monitoring, reopening; the caseload, search and "my
concerns" pages; who may use them.

Concerns are filed in Slack through the signed path; people sign in and use the pages
as they would, and the tests read the pages, the rows and the audit log.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from store.models import (
    AuditEvent,
    CaseStatusChange,
    CurrentCaseStatus,
    IncidentAction,
)
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.records import audit_events, pupil_by_upn, staff_member
from tests.support.school import (
    DEPUTY,
    DSL,
    PUPIL_3A,
    PUPIL_5C,
    TA,
    TEACHER,
    configured_school,
)
from tests.support.slack import file_concern
from tests.support.web import People, main_of, shown

REASON = "Spoke to mum; breakfast club place arranged. Nothing further needed."


def case_numbers(body: str) -> list[int]:
    """The concerns a list shows, in order."""
    return [int(n) for n in re.findall(r'<tr id="case-(\d+)"', body)]


def status_text(body: str) -> str:
    """The incident page's Status line, as read."""
    part = body.split('id="case-status"', 1)[1].split(">", 1)[1].split("</p>", 1)[0]
    part = re.sub(r'<span class="visually-hidden">[^<]*</span>', "", part)
    return " ".join(shown(re.sub(r"<[^>]+>", " ", part)).split())


async def change(user: WebUser, number: int, **fields: str) -> tuple[int, str]:
    """Open the concern and send its status form."""
    status, _ = await user.get(f"/incidents/{number}")
    assert status == 200
    return await user.post(f"/incidents/{number}/status", fields)


async def staff_id(school: Harness, slack_id: str) -> int:
    return (await staff_member(school, slack_id)).id


async def status_rows(school: Harness) -> list[CaseStatusChange]:
    async with school.server.factory() as db:
        return list(await db.scalars(select(CaseStatusChange).order_by(CaseStatusChange.id)))


# -- status ---------------------------------------------------------------------------------


async def test_closing_with_an_outcome_and_reason_is_an_action_and_leaves_the_caseload(
    school: Harness,
) -> None:
    people = People(school)
    await file_concern(school)
    await file_concern(school, pupil_query=PUPIL_3A)
    async with people.signed_in(DSL) as dsl:
        _, page = await dsl.get("/incidents/1")
        assert status_text(page) == "Open"
        assert 'id="status-form"' in page
        _, caseload = await dsl.get("/caseload")
        assert case_numbers(caseload) == [1, 2]  # oldest first

        status, page = await change(
            dsl, 1, status="closed", outcome="no further action", reason=REASON
        )
        assert status == 200 and dsl.last_url.endswith("/incidents/1")
        assert status_text(page).startswith("Closed (no further action) since")
        [row] = await status_rows(school)
        assert (row.status, row.outcome) == ("closed", "no further action")
        # The reason is the action's text: on the action list, and encrypted at rest.
        entry = shown(page).split(f'id="action-{row.action_id}"', 1)[1].split("</li>", 1)[0]
        assert "Closed, outcome:" in entry and "no further action" in entry and REASON in entry
        async with school.server.factory() as db:
            action = await db.get(IncidentAction, row.action_id)
            assert action is not None and REASON.encode() not in action.text_ct
        [audited] = await audit_events(school, "case.close")
        assert audited.outcome == "ok" and audited.incident_id == row.incident_id
        assert "outcome no further action" in (audited.detail or "")
        assert REASON not in (audited.detail or "")

        _, caseload = await dsl.get("/caseload")
        assert case_numbers(caseload) == [2]
        _, found = await dsl.get("/search?status=closed")
        assert case_numbers(found) == [1]


async def test_monitoring_then_reopening(school: Harness) -> None:
    people = People(school)
    await file_concern(school)
    async with people.signed_in(DEPUTY) as deputy:
        await change(deputy, 1, status="monitoring", reason="Watching attendance for 4 weeks.")
        _, caseload = await deputy.get("/caseload?status=monitoring")
        assert case_numbers(caseload) == [1]
        _, caseload = await deputy.get("/caseload?status=open")
        assert case_numbers(caseload) == []
        await change(deputy, 1, status="closed", outcome="resolved in school", reason="Better.")
        status, page = await change(deputy, 1, status="open", reason="Fresh disclosure today.")
        assert status == 200 and status_text(page).startswith("Open since")
        assert "Reopened." in shown(page) and "Fresh disclosure today." in shown(page)
        _, caseload = await deputy.get("/caseload")
        assert case_numbers(caseload) == [1]
    changes = await status_rows(school)
    assert [r.status for r in changes] == ["monitoring", "closed", "open"]
    async with school.server.factory() as db:  # the status now: the latest change
        [now] = (await db.scalars(select(CurrentCaseStatus))).all()
        assert (now.status, now.outcome, now.change_id) == ("open", None, changes[-1].id)
    for action in ("case.monitor", "case.close", "case.reopen"):
        assert [e.outcome for e in await audit_events(school, action)] == ["ok"]


async def test_a_close_without_outcome_or_reason_changes_nothing(school: Harness) -> None:
    people = People(school)
    await file_concern(school)
    async with people.signed_in(DSL) as dsl:
        status, page = await change(dsl, 1, status="closed", outcome="", reason="  ")
        assert status == 400
        assert "Choose the outcome the concern is closed with." in page and "Say why." in page
        assert status_text(page) == "Open"
        status, page = await change(dsl, 1, status="closed", outcome="made up", reason="x")
        assert status == 400 and "Choose the outcome" in page
        status, page = await change(dsl, 1, status="open", reason="x")
        assert status == 400 and "The concern is already open." in page
    assert await status_rows(school) == []
    async with school.server.factory() as db:
        assert (await db.scalars(select(IncidentAction))).all() == []
    assert [e.outcome for e in await audit_events(school, "case.close")] == ["failed", "failed"]


async def test_only_key_holders_change_a_status_or_see_the_caseload_and_search(
    school: Harness,
) -> None:
    people = People(school)
    await file_concern(school)  # by TEACHER, who may see it
    async with people.signed_in(TEACHER) as teacher:
        _, page = await teacher.get("/incidents/1")
        assert status_text(page) == "Open"
        assert 'id="status-form"' not in page
        assert 'href="/caseload"' not in page and 'href="/my-concerns"' in page
        status, _ = await teacher.post(
            "/incidents/1/status", {"status": "closed", "outcome": "referred", "reason": "x"}
        )
        assert status == 404
        for path in ("/caseload", "/search", "/search?pupil=a", "/caseload?page=2"):
            status, body = await teacher.get(path)
            assert status == 404, path
            assert "case-" not in main_of(body)
    assert await status_rows(school) == []
    refused = [
        e.action
        for e in await audit_events(school, "case.status")
        + await audit_events(school, "caseload.view")
        + await audit_events(school, "search")
        if e.outcome == "refused"
    ]
    assert sorted(refused) == ["case.status", "caseload.view", "caseload.view", "search", "search"]


# -- my concerns ---------------------------------------------------------------------------


async def test_my_concerns_lists_only_the_persons_own_with_their_status(school: Harness) -> None:
    people = People(school)
    await file_concern(school)  # 1, by TEACHER
    await file_concern(school, author=TA, pupil_query=PUPIL_5C)  # 2, by TA
    await file_concern(school)  # 3, by TEACHER
    async with people.signed_in(DSL) as dsl:
        await change(dsl, 3, status="closed", outcome="referred", reason="Referred to MASH.")
        _, mine = await dsl.get("/my-concerns")
        assert case_numbers(mine) == []
    async with people.signed_in(TEACHER) as teacher:
        status, mine = await teacher.get("/my-concerns")
        assert status == 200 and case_numbers(mine) == [3, 1]  # newest first
        row = shown(mine).split('id="case-3"', 1)[1].split("</tr>", 1)[0]
        assert "Closed" in row and "referred" in row
    async with people.signed_in(TA) as ta:
        _, mine = await ta.get("/my-concerns")
        assert case_numbers(mine) == [2]
    assert len(await audit_events(school, "my_concerns.view")) == 3


# -- search and the caseload's filters -------------------------------------------------------


async def test_search_filters_audit_kinds_not_values(school: Harness) -> None:
    people = People(school)
    await file_concern(school)  # 1: 4B pupil, Behaviour, by TEACHER
    await file_concern(school, author=TA, pupil_query=PUPIL_3A, categories=("Attendance",))  # 2
    await file_concern(school, pupil_query=PUPIL_5C, agencies=["Police"])  # 3
    async with people.signed_in(DSL) as dsl:
        _, everything = await dsl.get("/search")
        assert case_numbers(everything) == [3, 2, 1]
        _, found = await dsl.get("/search?category=Attendance")
        assert case_numbers(found) == [2]
        _, found = await dsl.get(f"/search?pupil={PUPIL_3A}")
        assert case_numbers(found) == [2]
        _, found = await dsl.get("/search?agency=Police")
        assert case_numbers(found) == [3]
        _, found = await dsl.get("/search?status=open&category=Behaviour")
        assert case_numbers(found) == [3, 1]
        _, found = await dsl.get("/search?from=1990-01-01&to=1990-01-02")
        assert case_numbers(found) == []
        _, found = await dsl.get("/search?to=2099-01-01")
        assert case_numbers(found) == [3, 2, 1]
        await change(dsl, 2, status="closed", outcome="early help", reason="Early help offered.")
        _, found = await dsl.get("/search?outcome=early+help")
        assert case_numbers(found) == [2]
        _, by_year = await dsl.get("/caseload?year=4")
        assert case_numbers(by_year) == [1]
        _, by_class = await dsl.get("/caseload?class=5C")
        assert case_numbers(by_class) == [3]
        _, by_author = await dsl.get(f"/caseload?author={await staff_id(school, TA)}")
        assert case_numbers(by_author) == []  # TA's concern (2) is closed
        _, behaviour = await dsl.get("/caseload?category=Behaviour&referral=no")
        assert case_numbers(behaviour) == [1, 3]
    searches = await audit_events(school, "search")
    details = [e.detail or "" for e in searches]
    assert "filters: pupil; page 1" in details
    assert "filters: status, category; page 1" in details
    assert "no filters; page 1" in details
    assert all(PUPIL_3A not in d and "Attendance" not in d for d in details)


async def test_search_and_caseload_are_paged(school: Harness) -> None:
    people = People(school)
    for _ in range(53):
        await school.report_concern(
            TEACHER, pupil_query=PUPIL_3A, narrative="n", categories=["Behaviour"]
        )
    await school.delivered()
    async with people.signed_in(DSL) as dsl:
        _, first = await dsl.get("/caseload")
        assert case_numbers(first) == list(range(1, 51))
        assert 'id="previous-page"' not in first and 'id="next-page"' in first
        next_link = shown(first).split('id="next-page"', 1)[0].rsplit('href="', 1)[1].split('"')[0]
        _, second = await dsl.get(next_link)
        assert case_numbers(second) == [51, 52, 53] and 'id="next-page"' not in second
        assert 'id="previous-page"' in second
        _, found = await dsl.get("/search?category=Behaviour&page=2")
        assert case_numbers(found) == [3, 2, 1]
        assert "page=1" in shown(found).split('id="previous-page"', 1)[0].rsplit("<a", 1)[1]
        assert "category=Behaviour" in shown(found).split('id="previous-page"', 1)[0]
    details = [e.detail for e in await audit_events(school, "search")]
    assert details == ["filters: category; page 2"]


async def test_a_configured_outcome_is_offered_and_recorded(db_url: str, tmp_path: Path) -> None:
    toml = '[casework]\noutcomes = ["Support plan in place"]\n'
    async with configured_school(db_url, tmp_path, toml) as school:
        people = People(school)
        await file_concern(school)
        async with people.signed_in(DSL) as dsl:
            _, page = await dsl.get("/incidents/1")
            form = shown(page).split('id="status-outcome"', 1)[1].split("</select>", 1)[0]
            assert '<option value="no further action">' in form
            assert '<option value="Support plan in place">' in form
            await change(
                dsl, 1, status="closed", outcome="Support plan in place", reason="Plan agreed."
            )
            _, found = await dsl.get("/search?outcome=Support+plan+in+place")
            assert case_numbers(found) == [1]
        [row] = await status_rows(school)
        assert row.outcome == "Support plan in place"


async def test_the_referral_board_and_caseload_link_to_each_other(school: Harness) -> None:
    people = People(school)
    async with people.signed_in(DSL) as dsl:
        _, board = await dsl.get("/referrals")
        assert 'href="/caseload"' in main_of(board)
        _, caseload = await dsl.get("/caseload")
        assert 'href="/referrals"' in main_of(caseload)
    async with school.server.factory() as db:
        assert (
            await db.scalars(select(AuditEvent).where(AuditEvent.outcome == "failed"))
        ).all() == []


async def test_a_close_is_in_the_pupils_chronology(school: Harness) -> None:
    people = People(school)
    await file_concern(school, pupil_query=PUPIL_3A)
    async with school.server.factory():
        pupil_id = (await pupil_by_upn(school, PUPIL_3A)).id
    async with people.signed_in(DSL) as dsl:
        await change(dsl, 1, status="closed", outcome="referred", reason="Referred to MASH.")
        status, page = await dsl.get(f"/pupils/{pupil_id}")
        assert status == 200
        text = " ".join(shown(re.sub(r"<[^>]+>", " ", page)).split())
        assert "Concern closed, outcome: referred. Referred to MASH." in text


async def test_the_category_filter_finds_a_recategorised_concern(school: Harness) -> None:
    people = People(school)
    await file_concern(school)  # Behaviour
    async with people.signed_in(DSL) as dsl:
        _, found = await dsl.get("/search?category=Attendance")
        assert case_numbers(found) == []
        await dsl.post(
            "/incidents/1/actions", {"text": "Really attendance.", "categories": "Attendance"}
        )
        _, found = await dsl.get("/search?category=Attendance")
        assert case_numbers(found) == [1]
        row = shown(found).split('id="case-1"', 1)[1].split("</tr>", 1)[0]
        assert "Attendance" in row and "Behaviour" not in row
