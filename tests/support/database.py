"""The test databases: the same tests run against PostgreSQL and SQLite.

PostgreSQL: `VIGIL_TEST_DATABASE_URL` names a database to use (`.ci/run` creates a fresh
one); otherwise a temporary database is created on `VIGIL_TEST_POSTGRES_ADMIN_URL`
(default postgres@127.0.0.1:5432) and dropped at the end. If no server answers, the
PostgreSQL variants are skipped, and pytest's summary says so and why.

`tests/conftest.py` declares the fixtures; this module does their work.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from store.db import create_engine
from store.migrate import upgrade
from store.models import Base

ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(sql: str, admin_url: str = ADMIN_URL) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole run, or a skip saying why not."""
    given = os.environ.get("VIGIL_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1... when run in parallel
    created = None
    if given and worker:
        # Each parallel worker gets a database of its own beside the given one (same
        # server, its name and the worker's), made fresh and dropped at the end.
        base, name = given.rsplit("/", 1)
        admin = f"{base}/postgres"
        created = f"{name}_{worker}"
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)', admin))
        asyncio.run(_pg_admin(f'CREATE DATABASE "{created}"', admin))
        url = f"{base}/{created}"
    elif given:
        url = given
    else:
        name = f"vigil_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        try:
            asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            pytest.skip(
                f"PostgreSQL not reachable at {ADMIN_URL} ({type(exc).__name__}: {exc}); "
                "set VIGIL_TEST_DATABASE_URL or start PostgreSQL to run these"
            )
        created = name
        url = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{url}/{name}"
    asyncio.run(migrate(url))
    yield url
    if created:
        admin = url.rsplit("/", 1)[0] + "/postgres"
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)', admin))


def sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file in `directory`, to be copied for each test."""
    path = directory / "template.db"
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    """A clean, migrated SQLite database: a copy of `template` in `directory`."""
    path = directory / "vigil.db"
    shutil.copy(template, path)
    return f"sqlite+aiosqlite:///{path}"


def truncated(url: str) -> str:
    """The PostgreSQL database at `url`, every table emptied (identities restarted)."""
    asyncio.run(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            # The append-only tables refuse TRUNCATE (a trigger); a superuser may bypass it.
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()
