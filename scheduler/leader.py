"""Which process runs the scheduled checks: the one holding a PostgreSQL advisory lock.

Every `vigil serve` process (each of `--workers N`, and every replica on the same
database) runs a `Leadership`. It opens a connection of its own, outside the pool, and
asks for a session-level advisory lock (`pg_try_advisory_lock`); the process that gets it
starts the checks (`on_elected`), the others ask again every `retry` seconds. The lock
lives as long as that connection: when the leader dies, however it dies, PostgreSQL ends
its session and frees the lock, and another process takes over within `retry` seconds
(it runs the checks at once: they catch up). A leader whose connection breaks stops its
checks (`on_deposed`) before anyone else can be elected. Each check also claims its work
in the database (a nudge or escalation row per item), so even an overlap sends nothing
twice. On SQLite (one server per file, `bot.sqlite_lock`) the one process always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from store.db import is_sqlite

log = structlog.get_logger(__name__)

#: The advisory lock's key (advisory locks are per database): "vigil-jobs" as a number.
LOCK_KEY = 0x7669_6769_6C6A_6F62 & 0x7FFF_FFFF_FFFF_FFFF


class Leadership:
    """Holds (or waits for) the scheduler's advisory lock; calls back when it changes."""

    def __init__(
        self,
        url: str,
        *,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        retry: float = 2.0,
    ) -> None:
        self._url = url
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._retry = retry
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if is_sqlite(self._url):
            self._elected()
            return
        self._task = asyncio.create_task(self._run(), name="vigil-leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leading:
            self._deposed()

    def _elected(self) -> None:
        self.leading = True
        log.info("scheduler.leader", pid=os.getpid())
        self._on_elected()

    def _deposed(self) -> None:
        self.leading = False
        log.warning("scheduler.leader_lost", pid=os.getpid())
        self._on_deposed()

    async def _run(self) -> None:
        # NullPool: the connection is this object's alone, and closing it ends the session.
        engine = create_async_engine(self._url, poolclass=NullPool, hide_parameters=True)
        try:
            while True:
                try:
                    async with engine.connect() as connection:
                        autocommit = await connection.execution_options(
                            isolation_level="AUTOCOMMIT"
                        )
                        await self._hold(autocommit)
                except Exception as error:  # DATABASE_ERRORS, and anything else: try again
                    log.warning("scheduler.leadership_unavailable", error=type(error).__name__)
                if self.leading:
                    self._deposed()
                await asyncio.sleep(self._retry)
        finally:
            await engine.dispose()

    async def _hold(self, connection: AsyncConnection) -> None:
        """Ask for the lock until it is ours; then check every `retry` seconds that the
        connection (hence the lock) is still there. Returns only by raising."""
        while True:
            if not self.leading:
                got = await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                )
                if got:
                    self._elected()
            else:
                await connection.execute(text("SELECT 1"))
            await asyncio.sleep(self._retry)
