"""Ciphertexts are bound to their row (store.crypto): one moved in SQL is refused, on both
databases, with a clear page and a log entry naming only the table, column and row id.

Migration 0015 lets an UPDATE touch ciphertext columns (how `vigil rotate-key` converts
them), so these swaps are exactly what someone with write access to the database can do.
"""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from store import totp
from store.crypto import IntegrityError
from store.models import Incident, Staff, TotpEnrolment
from testing.harness import Harness
from tests.support.school import DSL, PUPIL_3A, TEACHER, TEACHER_3A
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

FIRST = "Bruise on the left forearm, said the babysitter grabbed her hard."
SECOND = "Talked about being left home alone all weekend with the little ones."


async def swap(school: Harness, model: object, column: str, first: object, second: object) -> None:
    """Swap two rows' values of `column`, as someone with the database could."""
    table = model.__table__  # type: ignore[attr-defined]
    key = table.primary_key.columns.values()[0]
    async with school.server.engine.begin() as connection:
        values = dict((await connection.execute(select(key, table.c[column]))).all())
        for mine, theirs in ((first, second), (second, first)):
            await connection.execute(
                update(table).where(key == mine).values({column: values[theirs]})
            )


async def test_a_narrative_swapped_between_two_incidents_is_refused(school: Harness) -> None:
    await file_concern(school, TEACHER, narrative=FIRST)
    await file_concern(school, TEACHER_3A, pupil_query=PUPIL_3A, narrative=SECOND)
    async with school.server.factory() as db:
        first, second = (await db.scalars(select(Incident.id).order_by(Incident.number))).all()
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/incidents/1")
        assert status == 200 and FIRST in shown(body)  # as filed, it reads
        await swap(school, Incident, "narrative_ct", first, second)
        with capture_logs() as logs:
            status, body = await dsl.get("/incidents/1")
        assert status == 500 and "integrity check" in shown(body)
        assert FIRST not in body and SECOND not in body  # never the other narrative
        status, body = await dsl.get("/incidents/2")
        assert status == 500 and SECOND not in body and FIRST not in body
    refused = [entry for entry in logs if entry["event"] == "crypto.integrity_error"]
    assert refused == [
        {
            "event": "crypto.integrity_error",
            "log_level": "error",
            "table": "incidents",
            "column": "narrative_ct",
            "row": first,
        }
    ]
    assert all(FIRST not in str(entry) and SECOND not in str(entry) for entry in logs)


async def test_a_swapped_authenticator_secret_is_refused(school: Harness) -> None:
    async with signed_in(school, DSL), signed_in(school, TEACHER) as teacher:
        teacher_secret = teacher.secret
    assert teacher_secret is not None
    async with school.server.factory() as db:
        dsl, teacher_row = (
            await db.scalar(select(Staff).where(Staff.slack_user_id == DSL)),
            await db.scalar(select(Staff).where(Staff.slack_user_id == TEACHER)),
        )
    assert dsl is not None and teacher_row is not None
    # The teacher's secret copied under the DSL's row must not let the teacher's phone
    # sign in as the DSL.
    await swap(school, TotpEnrolment, "secret_ct", dsl.id, teacher_row.id)
    code = pyotp.TOTP(teacher_secret).now()
    async with school.server.factory() as db:
        staff = await db.get(Staff, dsl.id)
        assert staff is not None
        with capture_logs() as logs, pytest.raises(IntegrityError):
            await totp.verify(db, staff=staff, code=code, cipher=school.server.cipher)
    assert [(e["table"], e["column"], e["row"]) for e in logs if "table" in e] == [
        ("totp_enrolments", "secret_ct", dsl.id)
    ]
