"""Find a member of staff's Slack user id from their email (`users.lookupByEmail`).

Used by the roster import (`store.roster.import_staff`) for staff whose CSV row has no
`slack_user_id`. Rate limits are honoured: a 429 waits `Retry-After` seconds and retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

MAX_RETRIES = 5  # retries after a 429, so at most six calls per email
DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 carries no usable Retry-After
NOT_FOUND_ERRORS = frozenset({"users_not_found", "user_not_found"})

SlackLookup = Callable[[str], Awaitable[str | None]]


class SlackLookupError(Exception):
    """`users.lookupByEmail` failed for a reason other than "no such user"."""


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float:
    """The `Retry-After` of a 429 in seconds (header names are case-insensitive)."""
    for name, value in (headers or {}).items():
        if str(name).lower() == "retry-after":
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return DEFAULT_RETRY_AFTER
    return DEFAULT_RETRY_AFTER


def _user_id(user: Any) -> str | None:
    """The id of a `users.lookupByEmail` user object, or None for a deleted user."""
    if not isinstance(user, dict) or user.get("deleted"):
        return None
    user_id = user.get("id")
    return str(user_id) if user_id else None


def _error_code(exc: SlackApiError) -> str:
    """Slack's `error` code from a failed call, or the HTTP status when there is none."""
    response = exc.response
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(response, 'status_code', '?')}"


def make_slack_lookup(client: AsyncWebClient) -> SlackLookup:
    """An async `email -> Slack user id | None` function backed by `users.lookupByEmail`."""

    async def lookup(email: str) -> str | None:
        """The Slack user id for `email`, or None when nobody (active) has it."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = await client.users_lookupByEmail(email=email)
            except SlackApiError as exc:
                status = getattr(exc.response, "status_code", None)
                if status == 429 and attempt < MAX_RETRIES:
                    await asyncio.sleep(retry_after_seconds(exc.response.headers))
                    continue
                code = _error_code(exc)
                if code in NOT_FOUND_ERRORS:
                    return None
                if status == 429:
                    raise SlackLookupError(
                        f"users.lookupByEmail still rate limited after {MAX_RETRIES} retries"
                    ) from exc
                raise SlackLookupError(f"users.lookupByEmail failed: {code}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SlackLookupError(
                    f"users.lookupByEmail failed: could not reach Slack ({type(exc).__name__})"
                ) from exc
            return _user_id(response.get("user"))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    return lookup
