"""Shared fixtures: the same tests run against PostgreSQL and SQLite.

PostgreSQL: `VIGIL_TEST_DATABASE_URL` names a database to use (`.ci/run` creates a fresh
one); otherwise a temporary database is created on `VIGIL_TEST_POSTGRES_ADMIN_URL`
(default postgres@127.0.0.1:5432) and dropped at the end. If no server answers, the
PostgreSQL variants are skipped, and pytest's summary says so and why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import SessionFactory, create_engine, session_factory
from store.migrate import upgrade
from store.models import Base
from testing.harness import Harness

ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole run, or a skip saying why not."""
    given = os.environ.get("VIGIL_TEST_DATABASE_URL")
    created = None
    if given:
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
    asyncio.run(_migrate(url))
    yield url
    if created:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database URL on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "vigil.db"
        shutil.copy(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """A clean, migrated PostgreSQL database (for tests about PostgreSQL itself)."""
    asyncio.run(_truncate(postgres_url))
    return postgres_url


async def _truncate(url: str) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def factory(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
async def harness(db_url: str) -> AsyncIterator[Harness]:
    """The real server against the Slack stand-in, on a clean database (no roster yet)."""
    async with Harness(
        database_url=db_url, worker_options={"poll_interval": 0.05, "base_backoff": 0.01}
    ) as running:
        yield running


@pytest.fixture
async def school(harness: Harness, tmp_path: Path) -> Harness:
    """The harness with the fictional school's rosters imported."""
    await harness.seed_school(tmp_path)
    return harness
