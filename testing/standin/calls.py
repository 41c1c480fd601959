"""Call recording: every request the stand-in receives, what it answered, and waiting for them.

:class:`RecordedCall` is what tests assert on; :class:`CallRecorder` keeps the list, wakes
whoever waits for a call (:meth:`CallRecorder.wait_for_calls`) and answers a call in one
place, so every answer is recorded the same way. Only method names and statuses are
logged (at DEBUG): request bodies can contain children's names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)


@dataclass
class RecordedCall:
    """One request the stand-in received, and what it answered.

    ``status`` is 0 and ``response`` is None while the call is still being
    answered, and stay so for a call whose connection was reset. For the
    browser-facing Sign in with Slack endpoints (``openid.connect.authorize``,
    ``openid.connect.keys``, ``openid.configuration``) ``response`` is a
    Slack-style summary of the answer (``ok``, ``error``, ``code``, ``location``
    ...) rather than a JSON body, and the authorize redirect counts as ok (302).
    """

    method: str
    params: dict[str, Any]
    token: str | None
    status: int = 0
    response: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    fault: str | None = None  # "status", "hang", "reset", "error", "rate_limit" or None

    @property
    def ok(self) -> bool:
        """True when the call was answered with HTTP 200 (or the authorize
        redirect's 302) and ``"ok": true``."""
        return self.status in (200, 302) and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack ``error`` code of the answer, if any."""
        return None if self.response is None else self.response.get("error")

    def describe(self) -> str:
        """A short, body-free description: safe for logs and assertion messages."""
        if self.answered_at is None:
            outcome = "unanswered"
        elif self.status == 0:
            outcome = "reset"
        else:
            outcome = f"{self.status} {'ok' if self.ok else self.error}"
        return f"{self.method} ({outcome})"


class SlackApiFailure(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The Slack-shaped JSON body for this failure."""
        body: dict[str, Any] = {"ok": False, "error": self.error, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


class CallRecorder:
    """The stand-in's call log (:attr:`calls`) and the condition waiters sleep on."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self._changed = asyncio.Condition()

    def _record(self, method: str, params: dict[str, Any]) -> RecordedCall:
        """A new call to ``method``, appended to :attr:`calls` (not yet answered)."""
        call = RecordedCall(method=method, params=params, token=None)
        self.calls.append(call)
        return call

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[RecordedCall]:
        """Recorded calls to ``method`` in arrival order (only ``ok`` ones if asked)."""
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    def clear_calls(self) -> None:
        """Forget recorded calls (state such as messages and views is kept)."""
        self.calls.clear()

    async def wait_for_calls(
        self,
        method: str,
        count: int,
        *,
        timeout: float = 5.0,
        ok_only: bool = True,
    ) -> list[RecordedCall]:
        """Wait until at least ``count`` calls to ``method`` arrived (and, with
        ``ok_only``, were answered ok); return them.

        Raises TimeoutError listing the calls that did arrive.
        """

        def enough() -> bool:
            return len(self.calls_to(method, ok_only=ok_only)) >= count

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(enough)
        except TimeoutError:
            got = len(self.calls_to(method, ok_only=ok_only))
            seen = ", ".join(c.describe() for c in self.calls) or "none"
            kind = "ok " if ok_only else ""
            raise TimeoutError(
                f"Timed out after {timeout}s waiting for {count} {kind}call(s) to {method}; "
                f"got {got}. Calls received: {seen}"
            ) from None
        return self.calls_to(method, ok_only=ok_only)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _answer(
        self,
        call: RecordedCall,
        status: int,
        summary: dict[str, Any],
        response: web.StreamResponse,
    ) -> web.StreamResponse:
        """Record ``summary`` as the answer to ``call`` and send ``response``."""
        call.status, call.response, call.answered_at = status, summary, time.monotonic()
        await self._notify()
        logger.debug("stand-in answered %s: %s", call.method, status)
        return response

    async def _finish(
        self,
        call: RecordedCall,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Answer ``call`` with the JSON ``body``."""
        response = web.json_response(body, status=status, headers=headers)
        return await self._answer(call, status, body, response)

    async def _drop(self, request: web.Request, call: RecordedCall) -> web.StreamResponse:
        """Close the connection of ``call`` without answering."""
        call.answered_at = time.monotonic()
        await self._notify()
        if request.transport is not None:
            request.transport.abort()
        # Nothing can be written any more; aiohttp discards this response.
        return web.Response(status=499)
