"""Faults on request and Slack-style rate limits: what a real Slack does on a bad day.

Queued faults (:meth:`FaultInjector.inject_status`, ``inject_hang``, ``inject_reset``,
``inject_error``) answer the next calls to a method; :meth:`FaultInjector.rate_limit`
puts a token bucket in front of one; :meth:`FaultInjector.refuse_app` refuses the app
itself (a revoked token, a missing scope) until :meth:`FaultInjector.accept_app`.
Every API call passes :meth:`FaultInjector._apply_fault` before its method handler runs.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from testing.standin.calls import CallRecorder, RecordedCall


@dataclass
class _Fault:
    kind: str  # "status" | "hang" | "reset" | "error"
    status: int = 200
    retry_after: int | None = None
    body: dict[str, Any] | None = None
    seconds: float = 0.0
    error: str = ""


@dataclass
class _Bucket:
    """A token bucket: ``per_second`` refill, capacity ``max(1, per_second)``."""

    per_second: float
    retry_after: int
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        capacity = max(1.0, self.per_second)
        self.tokens = min(capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _status_body(status: int) -> dict[str, Any]:
    error = {429: "ratelimited", 500: "fatal_error", 503: "service_unavailable"}.get(
        status, "internal_error" if status >= 500 else "request_failed"
    )
    return {"ok": False, "error": error}


class FaultInjector(CallRecorder):
    """Queued faults and rate limits per method (``"*"`` matches any method)."""

    def __init__(self) -> None:
        super().__init__()
        self._faults: dict[str, deque[_Fault]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._refusals: dict[str, dict[str, Any]] = {}  # method or "*" → Slack's answer
        self._stopping = asyncio.Event()  # set when the stand-in stops: releases hangs

    def _queue(self, method: str, fault: _Fault, count: int) -> None:
        self._faults.setdefault(method, deque()).extend(copy.copy(fault) for _ in range(count))

    def inject_status(
        self,
        method: str,
        status: int,
        *,
        count: int = 1,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``count`` calls to ``method`` with HTTP ``status``.

        A 429 always carries ``Retry-After`` (``retry_after`` or 1) and the body
        ``{"ok": false, "error": "ratelimited"}`` like Slack. ``method="*"``
        matches any method.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._queue(
            method, _Fault("status", status=status, retry_after=retry_after, body=body), count
        )

    def inject_hang(self, method: str, *, seconds: float = 60.0, count: int = 1) -> None:
        """Hold the next ``count`` calls unanswered for ``seconds``, then answer
        them normally (like a slow Slack that did the work late). Stopping the
        stand-in drops held connections instead."""
        self._queue(method, _Fault("hang", seconds=seconds), count)

    def inject_reset(self, method: str, *, count: int = 1) -> None:
        """Close the connection of the next ``count`` calls without answering.

        Note: AsyncWebClient's default retry handlers retry a dropped
        connection once, so use ``count=2`` or ``retry_handlers=[]`` to make a
        client call fail.
        """
        self._queue(method, _Fault("reset"), count)

    def inject_error(self, method: str, error: str, *, count: int = 1) -> None:
        """Answer the next ``count`` calls with HTTP 200 ``{"ok": false, "error": error}``."""
        self._queue(method, _Fault("error", error=error), count)

    def rate_limit(self, method: str, *, per_second: float, retry_after: int = 1) -> None:
        """Rate-limit ``method`` like Slack: beyond ``per_second`` (token bucket,
        burst ``max(1, per_second)``) answer 429 with ``Retry-After``."""
        capacity = max(1.0, per_second)
        self._buckets[method] = _Bucket(per_second, retry_after, capacity, time.monotonic())

    def refuse_app(
        self,
        error: str = "token_revoked",
        *,
        methods: tuple[str, ...] = ("*",),
        needed: str | None = None,
    ) -> None:
        """Refuse every call to ``methods`` (``"*"``: every Web API method) as Slack
        refuses an app whose token was revoked (``token_revoked``, ``invalid_auth``) or
        that lacks a scope (``missing_scope``, with the ``needed`` scope), until
        :meth:`accept_app`. HTTP 200 with ``{"ok": false, "error": error}``, as Slack."""
        body: dict[str, Any] = {"ok": False, "error": error}
        if needed is not None:
            body.update(needed=needed, provided="commands,im:write")
        for method in methods:
            self._refusals[method] = body

    def accept_app(self) -> None:
        """Stop refusing the app (its token was reissued, the scope granted)."""
        self._refusals.clear()

    def clear_faults(self) -> None:
        """Drop queued faults, rate limits and refusals of the app."""
        self._faults.clear()
        self._buckets.clear()
        self._refusals.clear()

    def _take_fault(self, method: str, *, wildcard: bool = True) -> _Fault | None:
        for key in (method, "*") if wildcard else (method,):
            queue = self._faults.get(key)
            if queue:
                return queue.popleft()
        return None

    async def _apply_fault(
        self, request: web.Request, call: RecordedCall, *, wildcard: bool = True
    ) -> web.StreamResponse | None:
        """Answer ``call`` as a queued fault or rate limit says; None to answer normally.

        ``wildcard=False`` ignores faults queued for ``"*"`` (the browser-facing
        Sign in with Slack endpoints only take faults queued by name).
        """
        refusal = self._refusals.get(call.method) or (self._refusals.get("*") if wildcard else None)
        if refusal is not None:
            call.fault = "refused"
            return await self._finish(call, 200, dict(refusal))
        fault = self._take_fault(call.method, wildcard=wildcard)
        if fault is not None:
            call.fault = fault.kind
            if fault.kind == "reset":
                return await self._drop(request, call)
            if fault.kind == "status":
                return await self._finish(
                    call,
                    fault.status,
                    fault.body or _status_body(fault.status),
                    {"Retry-After": str(fault.retry_after)}
                    if fault.retry_after is not None
                    else None,
                )
            if fault.kind == "error":
                return await self._finish(call, 200, {"ok": False, "error": fault.error})
            if fault.kind == "hang":
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=fault.seconds)
                    return await self._drop(request, call)
                except TimeoutError:
                    pass

        bucket = self._buckets.get(call.method)
        if bucket is not None and not bucket.take(time.monotonic()):
            call.fault = "rate_limit"
            return await self._finish(
                call,
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(bucket.retry_after)},
            )
        return None
