"""bot.slack_lookup: users.lookupByEmail with Retry-After handling, against a tiny server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_lookup import MAX_RETRIES, SlackLookupError, make_slack_lookup, retry_after_seconds

USERS = {
    "teacher@school.example": {"id": "U0TEACHER", "deleted": False},
    "gone@school.example": {"id": "U0GONE", "deleted": True},
}


@dataclass
class FakeSlack:
    """Answers users.lookupByEmail; `script` holds (status, body) answers to give first."""

    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.match_info["method"] == "users.lookupByEmail"
        params = dict(request.query)
        if request.can_read_body:
            params.update(await request.post())
        email = str(params.get("email", ""))
        self.calls.append(email)
        if self.script:
            status, body = self.script.pop(0)
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.json_response(body, status=status, headers=headers)
        user = USERS.get(email.lower())
        if user is None:
            return web.json_response({"ok": False, "error": "users_not_found"})
        return web.json_response({"ok": True, "user": user})


@pytest.fixture
async def slack() -> AsyncIterator[tuple[FakeSlack, AsyncWebClient]]:
    fake = FakeSlack()
    app = web.Application()
    app.router.add_route("*", "/api/{method}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/")
    try:
        yield fake, client
    finally:
        await runner.cleanup()


RATE_LIMITED = (429, {"ok": False, "error": "ratelimited"})


async def test_found_user_id(slack: tuple[FakeSlack, AsyncWebClient]) -> None:
    fake, client = slack
    lookup = make_slack_lookup(client)
    assert await lookup("teacher@school.example") == "U0TEACHER"
    assert fake.calls == ["teacher@school.example"]


async def test_retries_after_429_then_succeeds(slack: tuple[FakeSlack, AsyncWebClient]) -> None:
    fake, client = slack
    fake.script = [RATE_LIMITED]
    lookup = make_slack_lookup(client)
    assert await lookup("teacher@school.example") == "U0TEACHER"
    assert len(fake.calls) == 2


async def test_not_found_and_deleted_are_none(slack: tuple[FakeSlack, AsyncWebClient]) -> None:
    _fake, client = slack
    lookup = make_slack_lookup(client)
    assert await lookup("nobody@school.example") is None
    assert await lookup("gone@school.example") is None


async def test_gives_up_after_max_retries(slack: tuple[FakeSlack, AsyncWebClient]) -> None:
    fake, client = slack
    fake.script = [RATE_LIMITED] * (MAX_RETRIES + 1)
    lookup = make_slack_lookup(client)
    with pytest.raises(SlackLookupError, match="rate limited"):
        await lookup("teacher@school.example")
    assert len(fake.calls) == MAX_RETRIES + 1


async def test_other_errors_raise(slack: tuple[FakeSlack, AsyncWebClient]) -> None:
    fake, client = slack
    fake.script = [(200, {"ok": False, "error": "invalid_auth"})]
    lookup = make_slack_lookup(client)
    with pytest.raises(SlackLookupError, match="invalid_auth"):
        await lookup("teacher@school.example")


async def test_server_error_raises(slack: tuple[FakeSlack, AsyncWebClient]) -> None:
    fake, client = slack
    fake.script = [(500, {"ok": False})]
    lookup = make_slack_lookup(client)
    with pytest.raises(SlackLookupError):
        await lookup("teacher@school.example")


async def test_unreachable_slack_raises() -> None:
    client = AsyncWebClient(
        token="xoxb-test", base_url="http://127.0.0.1:9/api/", timeout=2, retry_handlers=[]
    )
    lookup = make_slack_lookup(client)
    with pytest.raises(SlackLookupError, match="could not reach Slack"):
        await lookup("teacher@school.example")


def test_retry_after_header_parsing() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"Retry-After": ["2"]}) == 2.0
    assert retry_after_seconds({"Retry-After": "soon"}) == 1.0
    assert retry_after_seconds({}) == 1.0
    assert retry_after_seconds(None) == 1.0
