"""The incident page is read, audited and its session touched in one transaction (the
middleware's, `handlers.web.security.one_transaction`); refusals still get the 404."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, select

from store import audit
from store.models import AuditEvent
from testing.harness import Harness
from tests.support.school import NARRATIVE, PUPIL_4B, TA, TEACHER
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in


async def test_the_incident_page_is_one_transaction_and_a_refusal_is_still_audited(
    school: Harness,
) -> None:
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B)
    engine = school.server.factory.kw["bind"].sync_engine
    begun: dict[object, int] = {}  # transactions begun, by asyncio task
    reads_session: set[object] = set()  # the tasks that loaded a web session

    def on_begin(_connection: Any) -> None:
        task = asyncio.current_task()
        begun[task] = begun.get(task, 0) + 1

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM web_sessions" in statement:
            reads_session.add(asyncio.current_task())

    async with signed_in(school, TEACHER) as teacher:
        event.listen(engine, "begin", on_begin)
        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            status, body = await teacher.get("/incidents/1")
        finally:
            event.remove(engine, "begin", on_begin)
            event.remove(engine, "before_cursor_execute", on_execute)
        assert status == 200 and NARRATIVE in shown(body)
        (request_task,) = reads_session  # the page's request, which loaded the session...
        assert begun[request_task] == 1  # ...and read and audited the page in that transaction
    async with signed_in(school, TA) as ta:  # not alerted: the one 404, audited
        status, _ = await ta.get("/incidents/1")
        assert status == 404
    async with school.server.factory() as db:
        views = list(
            await db.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "incident.view"))
        )
    assert views.count(audit.REFUSED) == 1 and len(views) == 2
