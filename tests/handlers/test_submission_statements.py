"""Filing a concern from the modal costs a fixed, small number of SQL statements (issue 17):
however many people it alerts, its alerts, outbox rows, pupils and categories are each
written in one statement, and nothing just written is read back."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import event, func, select

from store.models import Alert, OutboxMessage
from testing.harness import Harness
from tests.support.school import CLASS_TEACHER, NARRATIVE, OFFICE, PUPIL_3A, PUPIL_4B, TA, TEACHER

# Statements on the request's connection for one submission: the staff lookup, the
# repeat check and three reads (pupils with their class teachers, staff, the search
# key), then the writes (PostgreSQL: one statement, and NOTIFY at COMMIT, the number
# itself taken on a connection of its own; SQLite: one a table). Were 22 and 32.
MAX_STATEMENTS = {"postgresql": 7, "sqlite": 15}


async def _submit_counting(school: Harness, *, linked: tuple[str, ...] = (), **concern: Any) -> int:
    """Submit a concern through the modal; the statements its request's task ran."""
    engine = school.server.factory.kw["bind"].sync_engine
    by_task: Counter[object] = Counter()
    filing: set[object] = set()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        task = asyncio.current_task()
        by_task[task] += 1
        if "INSERT INTO incidents " in statement:
            filing.add(task)

    view = await school.open_concern(TEACHER)
    values: dict[str, Any] = {
        "pupil": await school.pick_pupil(TEACHER, view, PUPIL_4B),
        "narrative": NARRATIVE,
        "parents_contacted": "yes",
        **concern,
    }
    if linked:
        values["linked_pupils"] = [
            await school.pick_pupil(TEACHER, view, q, block_id="linked_pupils") for q in linked
        ]
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        response = await school.slack.view_submission(TEACHER, view=view, values=values)
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert response.status == 200 and not response.body  # filed: the modal closes
    (task,) = filing
    return by_task[task]


async def test_a_submission_runs_a_bounded_number_of_statements(school: Harness) -> None:
    few = await _submit_counting(school, categories=["Behaviour"])
    many = await _submit_counting(
        school,
        categories=["Well-being", "Attendance"],
        also_alert=[TA, OFFICE, CLASS_TEACHER],
        linked=(PUPIL_3A,),
    )
    bound = MAX_STATEMENTS[school.server.engine.dialect.name]
    assert few <= bound
    assert many <= bound
    assert many == few  # more people alerted, more pupils: no more statements
    async with school.server.factory() as db:
        alerts = await db.scalar(select(func.count()).select_from(Alert))
        messages = await db.scalar(select(func.count()).select_from(OutboxMessage))
    assert alerts and messages and messages > alerts  # every DM and both receipts queued
