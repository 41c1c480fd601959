"""Engines and sessions for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import CursorResult, ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store import immutability

SessionFactory = async_sessionmaker[AsyncSession]


class DatabaseUnavailable(OperationalError):
    """The database is down, restarting, unreachable or refusing connections.

    Raised (by the engine's error hook, see `classify`) in place of the driver's error
    when the error is about the connection, never about the statement: a value out of
    range, a broken constraint or a trigger's refusal stay what they are.
    """


#: What a database that is down, restarting or unreachable raises: the request that met
#: it fails cleanly and may be tried again; nothing was committed. Nothing else: an error
#: in a statement (an id out of range, a unique key, a trigger) is not an outage.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DatabaseUnavailable, OSError, TimeoutError)

# PostgreSQL SQLSTATE classes that mean "the server cannot serve this connection":
# 08 connection exception, 28 invalid authorization, 3D no such database, 53 insufficient
# resources (too many connections, disk full), 57 operator intervention (shutdown,
# starting up), 58 system error (I/O).
_PG_UNAVAILABLE_CLASSES = frozenset({"08", "28", "3D", "53", "57", "58"})
# SQLite primary result codes that mean the same: busy, locked, out of memory, I/O error,
# disk full, cannot open, lock protocol.
_SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 7, 10, 13, 14, 15})


def is_unavailable(error: BaseException, *, disconnect: bool = False) -> bool:
    """True when `error` (a driver's exception) says the database cannot be used right now."""
    if disconnect or isinstance(error, OSError | TimeoutError):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in _PG_UNAVAILABLE_CLASSES
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_UNAVAILABLE_CODES
    cause = error.__cause__
    if cause is not None and cause is not error:
        if isinstance(cause, OSError | TimeoutError):
            return True
        if type(cause).__name__ in _ASYNCPG_CONNECTION_ERRORS:
            return True
    # PEP 249: OperationalError is "related to the database's operation": a disconnect,
    # a data source not found. Without a code to say otherwise, take it at its word.
    return type(error).__name__ == "OperationalError"


# asyncpg's errors about the connection itself, which carry no SQLSTATE.
_ASYNCPG_CONNECTION_ERRORS = frozenset(
    {"ConnectionDoesNotExistError", "ConnectionFailureError", "ClientCannotConnectError"}
)


def classify(context: ExceptionContext) -> BaseException | None:
    """The engine's error hook: a connection-level error becomes `DatabaseUnavailable`."""
    original = context.original_exception
    if isinstance(original, DatabaseUnavailable):
        return None
    if not is_unavailable(original, disconnect=context.is_disconnect):
        return None
    if context.sqlalchemy_exception is None and isinstance(original, OSError | TimeoutError):
        return None  # not a driver error: DATABASE_ERRORS lists it already
    error = DatabaseUnavailable(
        context.statement,
        None,
        original,
        hide_parameters=True,
        connection_invalidated=context.is_disconnect,
    )
    return error


#: The largest id either backend stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def is_storable_id(value: int) -> bool:
    """True for an id a row could have: a forged 2**70 is no row, not a database error."""
    return 0 < value <= MAX_ID


def is_sqlite(url: str) -> bool:
    """True for a SQLite database URL."""
    return url.startswith("sqlite")


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600), if it is missing.

    SQLite would create it with the umask's mode (often 0644, world-readable), and it
    holds pupils' names. Its -wal and -shm files take the database file's mode.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return  # an existing file keeps its mode; a missing directory is SQLite's to report
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine with the settings Vigil relies on for each backend."""
    if is_sqlite(url):
        create_private_sqlite_file(url)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "handle_error", classify)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_async_engine(
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
    event.listen(engine.sync_engine, "handle_error", classify)
    _add_side_engine(engine, url)

    @event.listens_for(engine.sync_engine, "connect")
    def _no_jit(dbapi_connection: Any, _record: Any) -> None:
        # Vigil's queries are short index reads, but a paged list's estimated cost (the
        # whole plan's, before LIMIT) passes jit_above_cost: compiling it took 40-150 ms
        # of a 2 ms caseload or search query (EXPLAIN ANALYZE, 100,000 concerns).
        # A session setting, so it outlives the transaction the driver opens for it;
        # that transaction is ended here, so the connection starts clean (a read-only
        # connection, `privacy.sources.read_only`, is still read-only).
        cursor = dbapi_connection.cursor()
        cursor.execute("SET jit = off")
        cursor.close()
        dbapi_connection.commit()

    return engine


_SIDE: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


SIDE_LOCK_TIMEOUT_MS = 2000


def _add_side_engine(engine: AsyncEngine, url: str) -> None:
    """PostgreSQL: a small pool of autocommit connections beside the engine's own, for the
    one statement that must commit at once whatever the request's transaction does
    (`store.incidents.next_number`). Its own pool, so a request holding a connection never
    waits for another from the pool it holds one of; disposed with the engine."""
    side = create_async_engine(
        url,
        pool_size=2,
        max_overflow=3,
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,
        isolation_level="AUTOCOMMIT",
    )
    event.listen(side.sync_engine, "handle_error", classify)
    _SIDE[engine.sync_engine] = side

    @event.listens_for(side.sync_engine, "connect")
    def _wait_briefly(dbapi_connection: Any, _record: Any) -> None:
        # A row its statement needs stays locked only if the asking request's own
        # transaction holds it: give up (SQLSTATE 55P03) rather than wait for ever.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET lock_timeout = '{SIDE_LOCK_TIMEOUT_MS}ms'")
        cursor.execute("SET jit = off")
        cursor.close()

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _dispose_side(_engine: Any) -> None:
        side.sync_engine.dispose()  # runs inside AsyncEngine.dispose's greenlet


def is_lock_timeout(error: BaseException) -> bool:
    """True for PostgreSQL's "lock not available" (a side statement's `lock_timeout`)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == "55P03"


def side_engine(session: AsyncSession) -> AsyncEngine | None:
    """The autocommit engine beside the session's (PostgreSQL engines made by
    `create_engine`), else None."""
    bind = bind_of(session)
    if not isinstance(bind, AsyncEngine):
        return None
    return _SIDE.get(bind.sync_engine)


_AUTOCOMMIT: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


def single_reads(session: AsyncSession) -> AsyncEngine | None:
    """PostgreSQL: the session's engine (its pool) in autocommit, for one read statement
    that needs no transaction of its own: no BEGIN and ROLLBACK round trips (the pupil
    typeahead's per-keystroke query, `store.pupils.search`: its CPU halved). A single
    statement sees what was committed before it started, as in a transaction. None on
    SQLite (switching its connection to autocommit costs more than it saves) or for a
    session bound to a connection."""
    bind = bind_of(session)
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "postgresql":
        return None
    reads = _AUTOCOMMIT.get(bind.sync_engine)
    if reads is None:
        reads = _AUTOCOMMIT[bind.sync_engine] = bind.execution_options(isolation_level="AUTOCOMMIT")
    return reads


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
