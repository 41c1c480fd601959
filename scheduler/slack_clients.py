"""Which Slack client speaks for a workspace: the one resolver for outgoing calls.

With `SLACK_BOT_TOKEN` (single-workspace mode) every workspace gets the one client. In
OAuth mode each workspace's bot token comes from its installation
(`store.installations.token_for_workspace`), cached briefly, and the client made for it
shares the server's HTTP connection pool. None means Vigil is not (or no longer)
installed there: nothing can be sent for that school.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from store import installations
from store.crypto import Cipher
from store.db import SessionFactory


class SlackClients:
    """workspace id → the AsyncWebClient holding that workspace's bot token."""

    def __init__(
        self,
        *,
        single: AsyncWebClient | None = None,
        factory: SessionFactory | None = None,
        cipher: Cipher | None = None,
        client_options: dict[str, Any] | None = None,
        ttl_seconds: float = 30.0,
    ) -> None:
        if single is None and (factory is None or cipher is None):
            raise ValueError("either one client, or the database to find each workspace's")
        self.single = single
        self._factory = factory
        self._cipher = cipher
        self._options = dict(client_options or {})
        self._ttl = ttl_seconds
        self._cache: dict[int, tuple[float, AsyncWebClient | None]] = {}
        self.session: aiohttp.ClientSession | None = None  # shared by every client made

    @property
    def timeout(self) -> float:
        """The clients' time-out (the delivery worker waits this long for stragglers)."""
        if self.single is not None:
            return float(self.single.timeout or 0)
        return float(self._options.get("timeout") or 0)

    def forget(self, workspace_id: int | None = None) -> None:
        """Drop what is cached (for one workspace): it was uninstalled or reinstalled."""
        if workspace_id is None:
            self._cache.clear()
        else:
            self._cache.pop(workspace_id, None)

    async def for_workspace(
        self, workspace_id: int, *, fresh: bool = False
    ) -> AsyncWebClient | None:
        """The client for the workspace's bot token; None if Vigil is not installed there."""
        if self.single is not None:
            return self.single
        cached = self._cache.get(workspace_id)
        if cached is not None and not fresh and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        assert self._factory is not None and self._cipher is not None
        async with self._factory() as session:
            token = await installations.token_for_workspace(
                session, self._cipher, workspace_id=workspace_id
            )
        client = None
        if token is not None:
            if cached is not None and cached[1] is not None and cached[1].token == token:
                client = cached[1]
            else:
                client = AsyncWebClient(token=token, session=self.session, **self._options)
        self._cache[workspace_id] = (time.monotonic(), client)
        return client
