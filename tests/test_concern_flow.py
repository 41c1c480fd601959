"""The first slice end to end: /concern → modal → submission → redacted alerts."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.harness import Harness
from store.models import Alert, Incident, OutboxMessage

TEACHER = "U0TCHPATEL"  # class teacher of 4B
DSL = "U0DSL0HUGH"


async def test_teacher_reports_a_concern_and_alerts_go_out(school: Harness) -> None:
    response = await school.report_concern(
        TEACHER,
        pupil_query="Z00000000004",
        narrative="Said she was hungry and had not eaten since Friday.",
        categories=["Well-being"],
    )
    assert response.status == 200, response.body
    await school.server.worker.drain()
    async with school.server.factory() as session:
        incident = await session.scalar(select(Incident))
        assert incident is not None and incident.number == 1
        alerts = (await session.scalars(select(Alert))).all()
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
    assert pending == 0
    assert len(alerts) >= 4
    messages = school.standin.messages_for_user(DSL)
    assert messages and "New concern #1" in messages[0]["text"]
