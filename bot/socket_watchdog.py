"""Keep a Socket Mode connection alive, and say so when it is not.

slack_sdk's aiohttp client reconnects by itself after an ordinary drop, but some
failures leave it stopped for good while the process looks healthy (a reconnect that
fails inside its message loop, a closed HTTP session: slack_sdk issues #1446, #1922).
For a school that means concerns typed into Slack go nowhere. So a watchdog asks the
client every `interval` seconds whether it is connected (`is_connected()`, which also
checks ping/pong); after `grace` seconds without a connection it closes that client and
connects a new one, trying again every interval until one works. It logs each step, and
`/healthz` reports the connection, so an outage is never silent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from bot.tasks import cancel

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for one connection attempt (apps.connections.open + ws)


class SocketModeWatchdog:
    """Owns the Socket Mode handler: connects it, watches it, replaces it when stuck."""

    def __init__(
        self,
        make_handler: Callable[[], Any],
        *,
        interval: float,
        grace: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_handler = make_handler
        self._interval = interval
        self._grace = 2 * interval if grace is None else grace
        self._clock = clock
        self.handler: Any = None
        self._down_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.replacements = 0

    async def start(self) -> None:
        """Connect (failing loudly if Slack refuses at start-up), then start watching."""
        self.handler = self._make_handler()
        await asyncio.wait_for(self.handler.connect_async(), CONNECT_TIMEOUT)
        self._task = asyncio.create_task(self._watch(), name="vigil-socket-watchdog")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self.handler is not None:
            await self._close(self.handler)
            self.handler = None

    async def connected(self) -> bool:
        if self.handler is None:
            return False
        try:
            return bool(await self.handler.client.is_connected())
        except Exception:  # a broken client cannot say it is connected
            return False

    def down_for(self) -> float:
        """Seconds since the connection was last seen down (0 while connected)."""
        return 0.0 if self._down_since is None else self._clock() - self._down_since

    async def status(self) -> dict[str, Any]:
        """For /healthz: `healthy` is False once the connection has been down past grace."""
        up = await self.connected()
        down = 0.0 if up else max(self.down_for(), 0.0)
        return {
            "connected": up,
            "down_seconds": round(down, 1),
            "healthy": up or down < self._grace,
            "replacements": self.replacements,
        }

    async def check(self) -> None:
        """One look at the connection (the watch loop calls this every interval)."""
        if await self.connected():
            if self._down_since is not None:
                log.info("socket_mode.connected", down_seconds=round(self.down_for(), 1))
            self._down_since = None
            return
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning("socket_mode.disconnected")
            return
        if self.down_for() < self._grace:
            return
        await self._replace()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the watchdog itself must never stop
                log.error("socket_mode.watchdog_failed", error=type(error).__name__)

    async def _replace(self) -> None:
        log.warning("socket_mode.reconnecting", down_seconds=round(self.down_for(), 1))
        old, self.handler = self.handler, None
        if old is not None:
            await self._close(old)
        fresh = self._make_handler()
        try:
            await asyncio.wait_for(fresh.connect_async(), CONNECT_TIMEOUT)
        except Exception as error:
            log.warning("socket_mode.reconnect_failed", error=type(error).__name__)
            await self._close(fresh)
            self.handler = fresh  # still ours to close, and to replace at the next check
            return
        self.handler = fresh
        self.replacements += 1
        log.info("socket_mode.reconnected", replacements=self.replacements)

    @staticmethod
    async def _close(handler: Any) -> None:
        try:
            await asyncio.wait_for(handler.close_async(), CONNECT_TIMEOUT)
        except Exception as error:
            log.warning("socket_mode.close_failed", error=type(error).__name__)
