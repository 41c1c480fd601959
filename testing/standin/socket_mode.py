"""Socket Mode: ``apps.connections.open`` and the websocket slack_sdk's client connects to.

:class:`SocketModeApi` hands out single-use websocket URLs, says hello on each
connection, pushes envelopes to the app and waits for its acks
(:meth:`SocketModeApi.socket_send`), and drops connections on request to exercise
reconnects (:meth:`SocketModeApi.drop_socket_connections`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from testing.standin.core import StandInCore, slack_method

logger = logging.getLogger(__name__)


class SocketModeApi(StandInCore):
    """Slack's Socket Mode endpoint for the app."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_tickets: set[str] = set()
        self._pending_acks: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    def _routes(self) -> list[web.RouteDef]:
        return [*super()._routes(), web.get("/socket-mode", self._handle_socket)]

    async def _close_connections(self) -> None:
        await super()._close_connections()
        for ws in list(self._sockets):
            await ws.close()
        for future in self._pending_acks.values():
            if not future.done():
                future.cancel()

    @slack_method("apps.connections.open")
    async def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._socket_tickets.add(ticket)
        return {"ok": True, "url": f"ws://{self._host}:{self._port}/socket-mode?ticket={ticket}"}

    @property
    def socket_connection_count(self) -> int:
        """How many Socket Mode connections are open."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._socket_tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._socket_tickets.discard(ticket)
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        self._sockets.append(ws)
        logger.debug("stand-in socket connected (%d open)", self.socket_connection_count)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": self.socket_connection_count,
                    "debug_info": {
                        "host": "applink-standin",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            await self._notify()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_socket_text(message.data)
        finally:
            self._sockets.remove(ws)
            await self._notify()
            logger.debug("stand-in socket closed (%d open)", self.socket_connection_count)
        return ws

    def _on_socket_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        future = self._pending_acks.get(str(message.get("envelope_id")))
        if future is not None and not future.done():
            payload = message.get("payload")
            future.set_result(payload if isinstance(payload, dict) else None)

    async def wait_socket_connected(
        self,
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> None:
        """Wait until at least ``count`` Socket Mode connections are open."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: self.socket_connection_count >= count)
        except TimeoutError:
            raise TimeoutError(
                f"Timed out after {timeout}s waiting for {count} Socket Mode connection(s); "
                f"{self.socket_connection_count} open; "
                f"{len(self.calls_to('apps.connections.open'))} apps.connections.open call(s)"
            ) from None

    async def socket_send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        timeout: float = 5.0,
    ) -> dict[str, Any] | None:
        """Send an envelope to the most recent Socket Mode connection and wait
        for the app's ack; return the ack's ``payload`` (None if it had none).

        ``envelope_type`` is "slash_commands", "interactive" or "events_api".
        Waits up to ``timeout`` for a connection if none is open.
        """
        deadline = time.monotonic() + timeout
        await self.wait_socket_connected(timeout)
        ws = [w for w in self._sockets if not w.closed][-1]
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = future
        try:
            await ws.send_str(json.dumps(envelope))
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await future
        except TimeoutError:
            raise TimeoutError(
                f"No ack for {envelope_type} envelope {envelope_id} within {timeout}s"
            ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)

    async def drop_socket_connections(
        self,
        *,
        graceful: bool = False,
        timeout: float = 5.0,
    ) -> None:
        """Close every Socket Mode connection (to exercise reconnects).

        By default the server closes the websockets, as when Slack drops a
        connection. With ``graceful`` it sends Slack's ``{"type": "disconnect"}``
        message instead and waits (up to ``timeout``) for the client to close
        the old connection itself, which slack_sdk does after reconnecting.
        """
        sockets = [ws for ws in self._sockets if not ws.closed]
        for ws in sockets:
            if graceful:
                await ws.send_json(
                    {
                        "type": "disconnect",
                        "reason": "refresh_requested",
                        "debug_info": {"host": "applink-standin"},
                    }
                )
            else:
                await ws.close(message=b"dropped by stand-in")
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(
                        lambda: not any(w in self._sockets for w in sockets)
                    )
        except TimeoutError:
            raise TimeoutError(
                f"{sum(w in self._sockets for w in sockets)} dropped socket(s) still open "
                f"after {timeout}s"
            ) from None
