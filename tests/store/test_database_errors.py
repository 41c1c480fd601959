"""Only a database that cannot be reached is "down": a bad statement is not an outage.

`store.db.DATABASE_ERRORS` is what every handler answers with "Vigil can't reach its
database" (and `/healthz` with 503). An id out of range, a broken unique key or a
trigger's refusal must not be reported that way: they are not helped by trying again.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from store.db import DATABASE_ERRORS, DatabaseUnavailable, SessionFactory, create_engine
from store.models import Alert, Workspace
from testing.harness import Harness
from tests.support.database import ADMIN_URL
from tests.support.school import DSL
from tests.support.slack import file_concern


async def test_an_id_out_of_range_is_not_the_database_being_down(factory: SessionFactory) -> None:
    async with factory() as session:
        with pytest.raises(Exception) as raised:
            await session.scalar(select(Alert).where(Alert.id == 2**70))
    assert not isinstance(raised.value, DATABASE_ERRORS), type(raised.value)


async def test_a_broken_unique_key_is_not_the_database_being_down(
    factory: SessionFactory,
) -> None:
    async with factory() as session, session.begin():
        session.add(Workspace(team_id="T0DUPLICATE", name="One"))
    async with factory() as session:
        session.add(Workspace(team_id="T0DUPLICATE", name="Two"))
        with pytest.raises(Exception) as raised:
            await session.flush()
    assert not isinstance(raised.value, DATABASE_ERRORS), type(raised.value)


async def test_a_statement_error_is_not_the_database_being_down(factory: SessionFactory) -> None:
    async with factory() as session:
        with pytest.raises(Exception) as raised:
            await session.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(raised.value, DATABASE_ERRORS), type(raised.value)


@pytest.mark.parametrize(
    "where",
    ["a role that does not exist", "a database that does not exist", "a closed port"],
)
async def test_a_database_that_cannot_be_reached_is_down(where: str, postgres_url: str) -> None:
    server = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = {
        "a role that does not exist": server.replace("//postgres@", "//no_such_role@")
        + "/postgres",
        "a database that does not exist": f"{server}/no_such_database",
        "a closed port": "postgresql+asyncpg://postgres@127.0.0.1:9/postgres",
    }[where]
    engine = create_engine(url)
    try:
        with pytest.raises(DATABASE_ERRORS):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_a_sqlite_file_that_cannot_be_opened_is_down() -> None:
    engine = create_engine("sqlite+aiosqlite:////nonexistent-directory/vigil.db")
    try:
        with pytest.raises(DatabaseUnavailable):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_mark_as_read_with_an_alert_id_of_two_to_the_seventy_is_refused_not_down(
    school: Harness,
) -> None:
    await file_concern(school)
    channel = school.standin.dm_channel_for(DSL)
    (dm,) = school.standin.messages_in(channel)
    response = await school.slack.block_actions(
        DSL,
        action_id="alert_mark_read",
        value=str(2**70),
        message=dm,
        channel_id=channel,
    )
    assert response.status == 200
    (notice,) = await school.standin.wait_for_calls("chat.postEphemeral", 1, timeout=5)
    assert notice.params["text"] == "Only the person this alert was sent to can mark it as read."
    async with school.server.factory() as session:
        assert (await session.scalars(select(Alert.id))).all()  # nothing changed, still there
