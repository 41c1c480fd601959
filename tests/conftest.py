"""The shared fixtures: the same tests run against PostgreSQL and SQLite.

Their workings are in `tests/support/` (`database.py`, `school.py`); pytest finds them
here. PostgreSQL: `VIGIL_TEST_DATABASE_URL` names a database to use (`.ci/run` creates a
fresh one); otherwise a temporary one is created and dropped at the end. If no server
answers, the PostgreSQL variants are skipped, and pytest's summary says so and why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import SessionFactory, create_engine, session_factory
from testing.harness import Harness

from .support import database
from .support.s3 import MotoS3, fresh_bucket, moto_server
from .support.school import server
from .support.strategies import Db, db_for


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole run, or a skip saying why not."""
    yield from database.postgres_database()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    return database.sqlite_template(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(params=database.BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database URL on each backend."""
    if request.param == "sqlite":
        return database.sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    return database.truncated(request.getfixturevalue("postgres_url"))


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """A clean, migrated PostgreSQL database (for tests about PostgreSQL itself)."""
    return database.truncated(postgres_url)


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
    async with server(db_url) as running:
        yield running


@pytest.fixture
async def school(harness: Harness, tmp_path: Path) -> Harness:
    """The harness with the fictional school's rosters imported."""
    await harness.seed_school(tmp_path)
    return harness


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    """One event loop and engine, for a synchronous hypothesis test of the async store."""
    yield from db_for(db_url)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A local S3 stand-in (moto's server on 127.0.0.1), shared by the session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoS3:
    """A bucket of its own on the S3 stand-in, with credentials in the environment."""
    return fresh_bucket(moto_endpoint, monkeypatch, tmp_path)
