"""Engines and sessions for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store import immutability

SessionFactory = async_sessionmaker[AsyncSession]

#: What a database that is down, restarting or unreachable raises: the request that met
#: it fails cleanly and may be tried again; nothing was committed.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    OSError,
    TimeoutError,
)


def is_sqlite(url: str) -> bool:
    """True for a SQLite database URL."""
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine with the settings Vigil relies on for each backend."""
    if is_sqlite(url):
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No ping before each use (a round trip per transaction, ~10% of a request's CPU):
        # after PostgreSQL restarts, the first request to meet a dead connection fails
        # cleanly (the person is asked to try again) and SQLAlchemy then replaces every
        # pooled connection at once. tests/bot/test_pg_restart.py holds this to account.
        pool_pre_ping=False,
        pool_recycle=1800,
        # Error messages never quote bound values (a search term can be a pupil's name).
        hide_parameters=True,
    )


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit, with the immutability guard."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    immutability.install()
    return factory


def bind_of(session: AsyncSession) -> AsyncEngine | AsyncConnection:
    """The engine (or connection) a session runs on; every session Vigil makes has one."""
    if session.bind is None:
        raise RuntimeError("the session is not bound to a database")
    return session.bind


def is_postgresql(session: AsyncSession) -> bool:
    """True when the session runs on PostgreSQL (False on SQLite)."""
    return bind_of(session).dialect.name == "postgresql"


def rowcount(result: object) -> int:
    """How many rows an UPDATE or DELETE matched.

    `AsyncSession.execute` is typed as returning a plain `Result`; for those statements it
    is a `CursorResult`, which holds the count.
    """
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on error."""
    async with factory() as session, session.begin():
        yield session
