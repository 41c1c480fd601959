"""Background work started by request handlers, tracked so shutdown can wait for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if there is one) and wait until it has stopped."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TaskTracker:
    """Starts tasks, logs their failures, and waits for them at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task.failed", error=type(task.exception()).__name__)

    def __len__(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until every task started so far (and any they start) has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, *, timeout: float) -> None:
        """Wait for running tasks (up to `timeout`), then cancel what is left."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("background_task.cancelled_at_shutdown", count=len(pending))
