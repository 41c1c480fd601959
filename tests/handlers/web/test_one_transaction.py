"""The incident page, the caseload and the other read pages are read, audited and their
session touched in one transaction (the middleware's,
`handlers.web.security.one_transaction`); refusals still get the 404, audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from store import audit
from store.models import AuditEvent
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support.records import pupil_by_upn
from tests.support.school import DSL, NARRATIVE, PUPIL_4B, TA, TEACHER
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in


@asynccontextmanager
async def transactions_of_the_page(school: Harness) -> AsyncIterator[dict[str, int]]:
    """Counts the transactions begun by the request that loaded a web session (the
    page's), as `counted["begun"]` once the block ends."""
    engine = school.server.factory.kw["bind"].sync_engine
    begun: dict[object, int] = {}  # transactions begun, by asyncio task
    reads_session: set[object] = set()  # the tasks that loaded a web session

    def on_begin(_connection: Any) -> None:
        task = asyncio.current_task()
        begun[task] = begun.get(task, 0) + 1

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM web_sessions" in statement:
            reads_session.add(asyncio.current_task())

    counted: dict[str, int] = {}
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield counted
    finally:
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "before_cursor_execute", on_execute)
    (request_task,) = reads_session  # the page's request, which loaded the session...
    counted["begun"] = begun[request_task]


async def _audited(school: Harness, action: str) -> list[str]:
    async with school.server.factory() as db:
        return list(await db.scalars(select(AuditEvent.outcome).where(AuditEvent.action == action)))


async def test_the_incident_page_is_one_transaction_and_a_refusal_is_still_audited(
    school: Harness,
) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B)
    async with signed_in(school, TEACHER) as teacher:
        async with transactions_of_the_page(school) as counted:
            status, body = await teacher.get("/incidents/1")
        assert status == 200 and NARRATIVE in shown(body)
        assert counted["begun"] == 1  # ...and read and audited the page in that transaction
    async with signed_in(school, TA) as ta:  # not alerted: the one 404, audited
        status, _ = await ta.get("/incidents/1")
        assert status == 404
    views = await _audited(school, "incident.view")
    assert views.count(audit.REFUSED) == 1 and len(views) == 2


async def _pupil_page(school: Harness) -> str:
    return f"/pupils/{(await pupil_by_upn(school, PUPIL_4B)).id}"


# (path, what the DSL sees on it, the audit action of reading it, if audited)
PAGES = [
    ("/caseload", "Caseload", "caseload.view"),
    ("/search?text=hungry", "Search", "search"),
    ("/my-concerns", "concerns", "my_concerns.view"),
    ("/tasks", "tasks", "tasks.view"),
    ("/alerts", "alerts", None),
    ("/referrals", "Referrals", "referrals.view"),
    ("pupil", "Chronology", "chronology.view"),
]


@pytest.mark.parametrize(("path", "heading", "action"), PAGES)
async def test_the_read_pages_are_one_transaction(
    school: Harness, path: str, heading: str, action: str | None
) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B)
    if path == "pupil":
        path = await _pupil_page(school)
    dsl: WebUser
    async with signed_in(school, DSL) as dsl:
        async with transactions_of_the_page(school) as counted:
            status, body = await dsl.get(path)
        assert status == 200, body
        assert heading.lower() in shown(body).lower()
        assert counted["begun"] == 1  # the session, the page and its audit row: one
    if action is not None:
        assert await _audited(school, action) == [audit.OK]


@pytest.mark.parametrize(
    ("path", "action"),
    [("/caseload", "caseload.view"), ("/search", "search"), ("/referrals", "referrals.view")],
)
async def test_a_converted_key_holder_page_still_refuses_others_with_the_404(
    school: Harness, path: str, action: str
) -> None:
    async with signed_in(school, TEACHER) as teacher:
        status, _ = await teacher.get(path)
    assert status == 404
    assert await _audited(school, action) == [audit.REFUSED]
