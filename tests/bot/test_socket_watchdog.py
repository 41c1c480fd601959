"""Socket Mode: the connection drops and comes back, and a stuck client is replaced.

Vigil runs in Socket Mode against the stand-in's websocket; staff type /concern over
that socket (the simulator with `app_url=None`). The watchdog checks every 0.2 s here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot import socket_watchdog
from testing.harness import SIGNING_SECRET, Harness
from testing.school import TEAM_ID
from testing.simulator import SlackSimulator
from tests.support.school import TEACHER

WATCHDOG = 0.2  # seconds between checks; replaced after two checks without a connection


@pytest.fixture
async def socket_school(db_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with Harness(
        database_url=db_url,
        overrides={"SLACK_APP_TOKEN": "xapp-standin", "VIGIL_SOCKET_WATCHDOG_SECONDS": WATCHDOG},
    ) as harness:
        await harness.seed_school(tmp_path)
        await harness.standin.wait_socket_connected(timeout=10)
        yield harness


async def concern_over_the_socket(harness: Harness) -> None:
    """/concern typed in Slack reaches Vigil over the socket and opens the modal."""
    before = len(harness.standin.calls_to("views.open", ok_only=True))
    async with SlackSimulator(
        app_url=None, signing_secret=SIGNING_SECRET, standin=harness.standin, team_id=TEAM_ID
    ) as slack:
        response = await slack.slash_command(TEACHER, command=harness.settings.command)
    assert response.status == 200
    await harness.standin.wait_for_calls("views.open", before + 1, timeout=5)


async def health(harness: Harness) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{harness.server.url}/healthz") as response,
    ):
        return response.status, await response.json()


async def wait_until(condition: object, *, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"{what} after {timeout}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_dropped_connection_comes_back_and_keeps_working(socket_school: Harness) -> None:
    harness = socket_school
    await concern_over_the_socket(harness)
    status, body = await health(harness)
    assert status == 200 and body["socket_mode"]["connected"] is True

    await harness.standin.drop_socket_connections()
    await harness.standin.wait_socket_connected(timeout=10)
    assert len(harness.standin.calls_to("apps.connections.open", ok_only=True)) >= 2
    await concern_over_the_socket(harness)
    status, body = await health(harness)
    assert status == 200 and body["socket_mode"]["connected"] is True


async def test_a_client_that_stops_reconnecting_is_replaced_by_the_watchdog(
    socket_school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """slack_sdk #1446: a reconnect that fails inside the client's loop leaves it
    disconnected for good while the process looks alive. The watchdog notices, says so
    on /healthz and in the log, and connects a new client, trying until one works."""
    harness = socket_school
    watchdog = harness.server.socket_watchdog
    assert watchdog is not None
    monkeypatch.setattr(socket_watchdog, "CONNECT_TIMEOUT", 1.0)
    stuck = watchdog.handler

    async def gives_up() -> None:  # the broken state: no connection, and no retry
        return None

    stuck.client.connect = gives_up
    # Slack refuses new sockets for now: each replacement's client would wait its ping
    # interval (10 s) before asking again, so each attempt times out and the watchdog
    # starts another, while /healthz says the connection is down.
    harness.standin.inject_status("apps.connections.open", 500, count=1000)
    await harness.standin.drop_socket_connections()

    async def reported_down() -> bool:
        status, body = await health(harness)
        return status == 503 and body["socket_mode"]["connected"] is False

    await wait_until(reported_down, timeout=5, what="/healthz never reported the outage")
    await asyncio.sleep(2.5)  # a few failed attempts
    refused = len(harness.standin.calls_to("apps.connections.open")) - 1
    assert refused >= 2 and watchdog.replacements == 0
    harness.standin.clear_faults()  # Slack is back

    async def replaced() -> bool:
        return watchdog.handler is not stuck and await watchdog.connected()

    await wait_until(replaced, timeout=15, what="the stuck client was never replaced")
    assert watchdog.replacements == 1
    assert len(harness.standin.calls_to("apps.connections.open", ok_only=True)) == 2
    await harness.standin.wait_socket_connected(timeout=5)
    await concern_over_the_socket(harness)
    status, body = await health(harness)
    assert status == 200 and body["socket_mode"]["connected"] is True
    assert stuck.client.closed, "the stuck client was left running"
