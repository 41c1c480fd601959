"""Every concern has a `case_statuses` row from its filing (migration 0016), on both
databases: filing writes it (open), a status change updates it, and the migration gives
one to every concern filed before (and its downgrade takes those away again)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select

from store.crypto import Cipher
from store.db import create_engine
from store.migrate import alembic_config, upgrade
from store.models import CurrentCaseStatus, Incident
from testing.harness import Harness
from tests.handlers.web.test_casework import change
from tests.support.school import DSL
from tests.support.slack import file_concern
from tests.support.web import People

REVISION = "0016"


async def rows(school: Harness) -> dict[int, tuple[str, bool, bool]]:
    """Each concern's number: its status, whether a change set it, and whether the row's
    created_at is the concern's."""
    async with school.server.factory() as db:
        found = await db.execute(
            select(Incident.number, CurrentCaseStatus, Incident.created_at).join(
                CurrentCaseStatus, CurrentCaseStatus.incident_id == Incident.id
            )
        )
        return {
            number: (row.status, row.change_id is not None, row.created_at == created)
            for number, row, created in found
        }


async def test_filing_writes_an_open_row_and_the_migration_backfills_it(
    school: Harness,
) -> None:
    people = People(school)
    await file_concern(school)
    await file_concern(school)
    async with people.signed_in(DSL) as dsl:
        await change(dsl, 2, status="closed", outcome="no further action", reason="Done.")
    assert await rows(school) == {1: ("open", False, True), 2: ("closed", True, True)}

    before = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    engine = create_engine(school.database_url)
    cipher = Cipher(school.data_key)
    try:

        def downgrade(connection: Any) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            config.attributes["cipher"] = cipher  # 0020's downgrade opens pupils' details
            command.downgrade(config, before)

        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
            count = (
                await connection.exec_driver_sql("SELECT count(*) FROM case_statuses")
            ).scalar()
            assert count == 1  # as before 0016: only the concern whose status changed
        await upgrade(engine, cipher=cipher)
    finally:
        await engine.dispose()
    assert await rows(school) == {1: ("open", False, True), 2: ("closed", True, True)}
    async with people.signed_in(DSL) as dsl:
        _, caseload = await dsl.get("/caseload")
        assert 'id="case-1"' in caseload and 'id="case-2"' not in caseload
