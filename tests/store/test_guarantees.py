"""Store guarantees that do not depend on Slack: immutability, encryption, schema."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.crypto import bind
from store.immutability import ImmutableRecordError
from store.models import Base, Incident, IncidentCategory, IncidentPupil
from testing.harness import Harness
from tests.support.school import PUPIL_4B, TEACHER

NARRATIVE = "Disclosed that an older cousin takes her dinner money every morning."


@pytest.fixture
async def filed(school: Harness) -> Harness:
    response = await school.report_concern(
        TEACHER,
        pupil_query=PUPIL_4B,
        narrative=NARRATIVE,
        categories=["Behaviour"],
        parents_contacted="no",
        parents_reason="Mother is the person named in the disclosure.",
    )
    assert response.status == 200
    return school


async def test_orm_refuses_to_change_an_incident(filed: Harness) -> None:
    async with filed.server.factory() as session:
        incident = await session.scalar(select(Incident))
        assert incident is not None
        incident.happened_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        with pytest.raises(ImmutableRecordError):
            await session.flush()


async def test_orm_allows_re_encrypting_a_ciphertext_and_nothing_else(filed: Harness) -> None:
    cipher = filed.server.cipher
    async with filed.server.factory() as session:
        incident = await session.scalar(select(Incident))
        assert incident is not None
        where = bind(Incident.narrative_ct, incident.id)
        incident.narrative_ct = cipher.encrypt(cipher.decrypt(incident.narrative_ct, where), where)
        await session.flush()  # a re-encryption (what `vigil rotate-key` does) is allowed
        incident.narrative_ct = cipher.encrypt("another text", where)
        incident.parents_contacted = "yes"
        with pytest.raises(ImmutableRecordError):
            await session.flush()


async def test_orm_refuses_to_delete_an_incident_or_its_parts(filed: Harness) -> None:
    for model in (Incident, IncidentPupil, IncidentCategory):
        async with filed.server.factory() as session:
            row = await session.scalar(select(model))
            await session.delete(row)
            with pytest.raises(ImmutableRecordError):
                await session.flush()


@pytest.mark.parametrize(
    "statement",
    [
        update(Incident).values(parents_contacted="yes"),
        update(Incident).values(number=99),
        # A ciphertext may be re-encrypted (migration 0015), but not with anything else.
        update(Incident).values(
            narrative_ct=b"x", happened_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        ),
        update(Incident).values(author_id=1),
        update(IncidentCategory).values(name="Attendance"),
        update(IncidentPupil).values(is_main=False),
        delete(IncidentCategory),
        delete(IncidentPupil),
        delete(Incident),
    ],
    ids=lambda s: str(s).split("\n")[0][:40],
)
async def test_database_refuses_changes_in_plain_sql(filed: Harness, statement: object) -> None:
    async with filed.server.engine.connect() as connection:
        with pytest.raises((DBAPIError, IntegrityError), match="immutable"):
            await connection.execute(statement)  # type: ignore[arg-type]


async def test_narrative_is_not_in_the_database_in_plain_text(filed: Harness) -> None:
    url = filed.database_url
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        async with filed.server.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"dinner money" not in raw and b"person named" not in raw
    else:
        async with filed.server.engine.connect() as connection:
            dump = await connection.execute(
                text(
                    "SELECT encode(narrative_ct, 'escape') "
                    "|| coalesce(encode(parents_reason_ct, 'escape'), '') FROM incidents"
                )
            )
            assert "dinner money" not in " ".join(r[0] for r in dump)


async def test_migrations_match_the_models(engine: object) -> None:
    def compare(connection: object) -> list:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:  # type: ignore[attr-defined]
        assert await connection.run_sync(compare) == []
