"""Slack refusing the app itself (a revoked or invalid token, a missing scope) loses nothing.

Before, such an error failed every alert at once, never to be retried, while `/healthz`
said ok. Now the messages wait, `/healthz` and the log say what is wrong, and once Slack
accepts the app again the backlog is delivered and the key-holders are told.
`vigil outbox retry` sends again what Slack refused for good.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot import logs
from bot.cli import main
from scheduler.delivery import DeliveryWorker
from store import outbox
from store.db import create_engine, session_factory
from store.models import OutboxMessage
from testing.harness import Harness
from tests.support.outbox_checks import check_delivered_exactly_once
from tests.support.school import FAST_WORKER, KEYHOLDERS, PUPIL_4B, TEACHER, seeded_school

NARRATIVE = "Came in without a coat again and said the heating at home is off."
# A concern about a 4B pupil from a 4B teacher: 4 key-holders and the other 4B teacher
# are alerted, and the reporter gets a receipt.
MESSAGES_PER_CONCERN = 6


async def health(harness: Harness) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{harness.server.url}/healthz") as response,
    ):
        return response.status, await response.json()


async def statuses(harness: Harness) -> list[str]:
    async with harness.server.factory() as session:
        return list((await session.scalars(select(OutboxMessage.status))).all())


async def wait_until(condition: Any, *, timeout: float = 10.0, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("error", "methods", "needed"),
    [
        ("token_revoked", ("*",), None),
        ("invalid_auth", ("*",), None),
        ("missing_scope", ("chat.postMessage",), "chat:write"),
    ],
)
async def test_messages_wait_while_slack_refuses_the_app_and_go_out_once_it_accepts_it(
    db_url: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    error: str,
    methods: tuple[str, ...],
    needed: str | None,
) -> None:
    logs.configure("INFO")
    try:
        async with seeded_school(db_url, tmp_path, pause_probe=0.2) as school:
            # The concern is filed; then, before its messages go out, Slack refuses the app
            # (with a revoked token Slack would not deliver /concern itself).
            school.standin.refuse_app(error, methods=("chat.postMessage",), needed=needed)
            response = await school.report_concern(
                TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
            )
            assert response.status == 200 and not response.body
            school.standin.refuse_app(error, methods=methods, needed=needed)

            async def paused() -> bool:
                return school.server.worker.slack_pause is not None

            await wait_until(paused, what="delivery never paused")
            await asyncio.sleep(0.5)  # a few tries while Slack still refuses
            assert set(await statuses(school)) == {outbox.PENDING}  # nothing failed
            assert school.standin.calls_to("chat.postMessage", ok_only=True) == []
            status, body = await health(school)
            assert status == 503 and body["status"] == "unavailable"
            assert body["slack"]["status"] == "paused" and body["slack"]["error"] == error
            assert body["slack"].get("needed_scope") == needed
            assert body["outbox_pending"] == MESSAGES_PER_CONCERN
            refused_tries = len(school.standin.calls_to("chat.postMessage"))
            assert refused_tries < 10  # one message tries now and then, not every message

            school.standin.accept_app()
            await school.delivered()
            notices = MESSAGES_PER_CONCERN + len(KEYHOLDERS)
            await check_delivered_exactly_once(
                school.server.factory, school.standin, messages=notices
            )
            for keyholder in KEYHOLDERS:
                (notice,) = [
                    m
                    for m in school.standin.messages_for_user(keyholder)
                    if "could not send Slack messages" in m["text"]
                ]
                assert f"Slack refused the app ({error})" in notice["text"]
                assert "the messages that waited meanwhile" in notice["text"]
                assert NARRATIVE not in str(notice)
            status, body = await health(school)
            assert status == 200 and "slack" not in body
    finally:
        logs.configure("WARNING")
    logged = capfd.readouterr().err
    assert logged.count("outbox.slack_paused") == 1, logged  # said once, with what to do
    assert f"error={error}" in logged and "reinstall it with the scopes" in logged
    assert "outbox.slack_resumed" in logged and "outbox.refused" not in logged


async def test_healthz_shows_the_pause_when_delivery_runs_in_another_process(
    db_url: str, tmp_path: Path
) -> None:
    async with seeded_school(db_url, tmp_path) as school:
        # The server only queues (VIGIL_OUTBOX_DELIVERY=process): another process delivers,
        # with an engine of its own.
        await school.server.worker.stop()
        engine = create_engine(db_url)
        delivery = DeliveryWorker(
            factory=session_factory(engine),
            client=school.server.worker_client,
            clock=school.now,
            **{**FAST_WORKER, "pause_probe": 0.2},
        )
        try:
            school.standin.refuse_app(
                "missing_scope", methods=("chat.postMessage",), needed="chat:write"
            )
            response = await school.report_concern(
                TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
            )
            assert response.status == 200 and not response.body
            delivery.start()

            async def unhealthy() -> bool:
                return (await health(school))[0] == 503

            await wait_until(unhealthy, what="/healthz never showed the pause")
            status, body = await health(school)
            assert body["status"] == "unavailable"
            assert body["slack"] == {
                "status": "paused",
                "error": "missing_scope",
                "needed_scope": "chat:write",
            }
            assert body["outbox_pending"] == MESSAGES_PER_CONCERN

            school.standin.accept_app()

            async def all_sent() -> bool:
                return set(await statuses(school)) == {outbox.SENT}

            await wait_until(all_sent, what="the backlog never went out")
            status, body = await health(school)
            assert status == 200 and body["status"] == "ok" and "slack" not in body
        finally:
            await delivery.stop()
            await engine.dispose()


async def test_outbox_retry_sends_again_what_slack_refused_for_good(
    school: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    school.standin.inject_error("chat.postMessage", "channel_not_found", count=MESSAGES_PER_CONCERN)
    response = await school.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Behaviour"]
    )
    assert response.status == 200
    await school.delivered()
    assert set(await statuses(school)) == {outbox.FAILED}

    monkeypatch.setenv("VIGIL_DATABASE_URL", school.database_url)
    status = await asyncio.to_thread(main, ["--env-file", "/nonexistent", "outbox", "retry"])
    assert status == 0
    out = capsys.readouterr().out
    assert f"Requeued {MESSAGES_PER_CONCERN} messages Slack had refused" in out
    assert f"channel_not_found {MESSAGES_PER_CONCERN}" in out
    school.server.worker.notify()
    await school.delivered()
    await check_delivered_exactly_once(
        school.server.factory, school.standin, messages=MESSAGES_PER_CONCERN
    )
    again = await asyncio.to_thread(main, ["--env-file", "/nonexistent", "outbox", "retry"])
    assert again == 0 and "No failed messages" in capsys.readouterr().out
