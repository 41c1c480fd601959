"""PostgreSQL: a runtime role that can run Vigil but cannot truncate, alter or delete the
record; and append-only tables that refuse TRUNCATE even from their owner.

The tests' own role (`postgres`) owns the schema, as the migration role would; the
runtime role is created here (the test server trusts connections from 127.0.0.1, so no
password is needed) and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select, text

from bot.cli import main
from store.db import create_engine
from store.models import AuditEvent, Pupil
from tests.support.database import ADMIN_URL
from tests.support.records import set_date_of_birth
from tests.support.school import DSL, seeded_school
from tests.support.slack import file_concern
from tests.support.web import signed_in


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def runtime_role(pg_url: str) -> AsyncIterator[str]:
    """A login role that owns nothing, with `vigil db grant --apply` run for it."""
    role = f"vigil_runtime_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        yield role
    finally:
        database = pg_url.rsplit("/", 1)[1]
        owner = await asyncpg.connect(_dsn(pg_url))
        try:
            await owner.execute(f"DROP OWNED BY {role}")
        finally:
            await owner.close()
        await admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM {role}')
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


def as_role(url: str, role: str) -> str:
    return url.replace("//postgres@", f"//{role}@")


async def grant(pg_url: str, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", pg_url)  # the owner runs it
    argv = ["--env-file", "/nonexistent", "db", "grant", "--runtime-role", role, "--apply"]
    assert await asyncio.to_thread(main, argv) == 0


async def refused(url: str, statement: str) -> str:
    """The error PostgreSQL gives `statement` run at `url` (it must fail)."""
    connection = await asyncpg.connect(_dsn(url))
    try:
        with pytest.raises(asyncpg.PostgresError) as error:
            await connection.execute(statement)
        return str(error.value)
    finally:
        await connection.close()


async def test_the_runtime_role_runs_vigil_but_cannot_truncate_alter_or_delete_the_record(
    pg_url: str, runtime_role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await grant(pg_url, runtime_role, monkeypatch)
    runtime_url = as_role(pg_url, runtime_role)
    async with seeded_school(runtime_url, tmp_path) as school:  # everything as the runtime
        await file_concern(school)
        async with signed_in(school, DSL, remember=True) as dsl:
            status, _page = await dsl.get("/incidents/1")
            assert status == 200
            assert (await dsl.post("/incidents/1/read"))[0] == 200
        await school.delivered()
        # A record past its retention date is destroyed by the runtime role too.
        await file_concern(school)
        async with school.server.factory() as db:
            upns = [p.upn for p in (await db.scalars(select(Pupil))).all()]
        for upn in upns:
            await set_date_of_birth(school, upn, dt.date(1990, 1, 1))
        async with signed_in(school, DSL, remember=True) as dsl:
            status, page = await dsl.post("/retention/destroy/concern/2", {"confirm": "destroy"})
            assert status == 200 and "Record destroyed" in page

    assert "permission denied" in await refused(runtime_url, "TRUNCATE audit_log")
    assert "permission denied" in await refused(runtime_url, "DELETE FROM audit_log")
    # Only a destruction deletes a record's rows (its permit checked by the triggers).
    assert "immutable" in await refused(runtime_url, "DELETE FROM incidents")
    assert "permission denied" in await refused(runtime_url, "UPDATE incidents SET number = 9")
    assert "permission denied" in await refused(runtime_url, "UPDATE audit_log SET ip = NULL")
    assert "must be owner" in await refused(runtime_url, "ALTER TABLE staff ADD COLUMN x int")
    assert "must be owner" in await refused(runtime_url, "DROP TABLE outbox")


async def test_an_append_only_table_refuses_truncate_even_from_its_owner(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO audit_log (at, action, outcome) VALUES (now(), 'x', 'ok')")
            )
        for table in ("audit_log", "incidents", "incident_actions", "referral_events"):
            message = await refused(pg_url, f"TRUNCATE {table} CASCADE")
            assert f"{table} is append-only: TRUNCATE is refused" in message
        async with engine.connect() as connection:
            assert len((await connection.execute(select(AuditEvent.id))).all()) == 1
    finally:
        await engine.dispose()


def test_grant_prints_the_statements_and_no_delete_on_append_only_tables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", "postgresql+asyncpg://owner@db.internal/vigil")
    argv = ["--env-file", "/nonexistent", "db", "grant", "--runtime-role", "vigil_app"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "GRANT SELECT, INSERT ON audit_log TO vigil_app;" in lines
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO vigil_app;" in lines
    assert not [line for line in lines if "TRUNCATE" in line or "ALL PRIVILEGES" in line]
    assert main([*argv[:-1], "vigil_app; DROP TABLE x"]) == 2  # not a plain role name
