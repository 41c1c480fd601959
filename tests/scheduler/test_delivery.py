"""DESIGN §2.2, nothing is lost and nothing is sent twice: the outbox worker against a
misbehaving Slack, on both databases.

Each test reports a real concern through the running server, lets the stand-in fail the
way Slack does (429 storms, 5xx, reset connections, calls that time out but are done
late, a process that dies mid-call), and then checks what people would see: one DM per
recipient, and the outbox and alert rows recording exactly where each DM is.

Every DM carries its outbox row's id in Slack message metadata, so each message in the
stand-in is matched to the row that sent it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from scheduler.delivery import DeliveryWorker
from store import outbox
from store.db import create_engine, is_sqlite, session_factory
from store.models import OutboxMessage
from testing.harness import Harness
from testing.school import STAFF
from testing.standin import RecordedCall
from tests.support import outbox_checks as checks
from tests.support.outbox_checks import outbox_id
from tests.support.school import FAST_WORKER, PUPIL_4B, TEACHER, extra_keyholders, seeded_school

NARRATIVE = "Arrived without a coat again and flinched when a door banged."
FAST = FAST_WORKER
RETRY_AFTER = 1  # seconds, as Slack sends in `Retry-After`
# A call already on its way when Slack answered 429 may still arrive just after it; the
# worker cannot have known. 0.25 s is orders of magnitude above local round trips.
IN_FLIGHT = 0.25
# 429s in a row. Vigil stops sending as soon as one arrives, so each second of the storm
# meets only the few calls already on their way: this lasts about 3 to 4 s.
STORM = 10

# The demo school's 4 key-holders (DSL, deputy, head, pastoral) plus 26 more: 30 in all.
EXTRA_KEYHOLDERS = extra_keyholders(26, prefix="U0KEYH", email="keyholder")
BIG_STAFF = (*STAFF, *EXTRA_KEYHOLDERS)
# A concern about a 4B pupil from a 4B teacher alerts every key-holder and the other 4B
# class teacher; the reporter gets a receipt.
SMALL_SCHOOL_MESSAGES = 4 + 1 + 1
BIG_SCHOOL_MESSAGES = 30 + 1 + 1


# The school with its rosters imported and a fast-polling worker (options on top of FAST).
running = seeded_school


async def report(harness: Harness) -> None:
    response = await harness.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Well-being"]
    )
    assert response.status == 200 and not response.body, response.body


def posts(harness: Harness) -> list[RecordedCall]:
    return harness.standin.calls_to("chat.postMessage")


def messages_by_row(harness: Harness) -> dict[int, list[dict[str, Any]]]:
    """Every message Vigil has in Slack, keyed by the outbox row it came from."""
    return checks.messages_by_row(harness.standin)


async def outbox_rows(harness: Harness) -> dict[int, OutboxMessage]:
    return await checks.outbox_rows(harness.server.factory)


async def assert_delivered_exactly_once(
    harness: Harness, *, messages: int, failed: Iterable[int] = ()
) -> dict[int, OutboxMessage]:
    """See `outbox_checks.check_delivered_exactly_once`."""
    return await checks.check_delivered_exactly_once(
        harness.server.factory, harness.standin, messages=messages, failed=failed
    )


# -- the fan-out -----------------------------------------------------------------------


async def test_a_concern_reaches_thirty_people_once_each(db_url: str, tmp_path: Path) -> None:
    async with running(db_url, tmp_path, staff=BIG_STAFF) as harness:
        await report(harness)
        await harness.delivered(timeout=5)
        rows = await assert_delivered_exactly_once(harness, messages=BIG_SCHOOL_MESSAGES)
        assert sum(row.kind == outbox.ALERT for row in rows.values()) == 31
        assert {row.channel for row in rows.values() if row.kind == outbox.ALERT} >= {
            person.slack_user_id for person in EXTRA_KEYHOLDERS
        }
        # Nothing went wrong, so nothing was tried twice or looked up.
        assert len(posts(harness)) == BIG_SCHOOL_MESSAGES
        assert all(row.attempts == 1 for row in rows.values())
        assert harness.standin.calls_to("conversations.history") == []


# -- rate limits -----------------------------------------------------------------------


async def test_a_429_storm_is_waited_out_and_everyone_gets_one_dm(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path, staff=BIG_STAFF) as harness:
        harness.standin.inject_status("chat.postMessage", 429, retry_after=RETRY_AFTER, count=STORM)
        await report(harness)
        await harness.delivered(timeout=10)
        await assert_delivered_exactly_once(harness, messages=BIG_SCHOOL_MESSAGES)

        calls = posts(harness)
        limited = [call for call in calls if call.status == 429]
        assert len(limited) == STORM, "the storm was not met in full"
        assert len(calls) == BIG_SCHOOL_MESSAGES + STORM  # a 429 posts nothing

        # A message told to wait is not tried again until Retry-After has passed since
        # Slack said so (exact: its retry is only scheduled once the 429 is received).
        for call in limited:
            again = [c for c in calls if outbox_id(c) == outbox_id(call) and c.at > call.at]
            assert again, "a rate-limited message was never retried"
            assert again[0].at - call.answered_at >= RETRY_AFTER - 0.001

        # And the pause covers the whole workspace, not just that message: after any
        # 429, Slack hears nothing more from Vigil until Retry-After has passed, apart
        # from calls that were already on their way (arriving within IN_FLIGHT).
        for call in limited:
            assert call.answered_at is not None
            too_soon = [
                c
                for c in calls
                if call.answered_at + IN_FLIGHT <= c.at < call.answered_at + RETRY_AFTER - 0.001
            ]
            assert not too_soon, [c.describe() for c in too_soon]


async def test_a_429_pauses_messages_that_were_busy_checking_slack(
    db_url: str, tmp_path: Path
) -> None:
    """A message retried after a 5xx first searches Slack's history; a 429 that arrives
    for another message while it searches still holds it back."""
    async with running(db_url, tmp_path) as harness:
        standin = harness.standin
        # Every first attempt fails with a 503, so every retry is uncertain and searches
        # the DM's history first. Most searches are slow; the first post to get through
        # them is rate-limited.
        standin.inject_status("chat.postMessage", 503, count=SMALL_SCHOOL_MESSAGES)
        standin.inject_status("chat.postMessage", 429, retry_after=RETRY_AFTER, count=1)
        standin.inject_hang("conversations.history", seconds=0.4, count=SMALL_SCHOOL_MESSAGES - 1)
        await report(harness)
        await harness.delivered(timeout=6)
        await assert_delivered_exactly_once(harness, messages=SMALL_SCHOOL_MESSAGES)

        calls = posts(harness)
        (limited,) = [call for call in calls if call.status == 429]
        assert limited.answered_at is not None
        too_soon = [
            c
            for c in calls
            if limited.answered_at + IN_FLIGHT <= c.at < limited.answered_at + RETRY_AFTER
        ]
        assert not too_soon, [c.describe() for c in too_soon]


# -- Slack errors and broken connections -------------------------------------------------


async def test_5xx_bursts_and_reset_connections_lose_nothing_and_send_nothing_twice(
    db_url: str, tmp_path: Path
) -> None:
    # A reset call may still be done by Slack later: Vigil looks for it after twice the
    # client's timeout (here 2 s), not at once.
    async with running(db_url, tmp_path, overrides={"VIGIL_SLACK_TIMEOUT": 1}) as harness:
        standin = harness.standin
        standin.inject_status("chat.postMessage", 500, count=3)
        standin.inject_status("chat.postMessage", 503, count=3)
        standin.inject_reset("chat.postMessage", count=3)
        await report(harness)
        await harness.delivered(timeout=10)
        rows = await assert_delivered_exactly_once(harness, messages=SMALL_SCHOOL_MESSAGES)

        calls = posts(harness)
        troubled = {outbox_id(c) for c in calls if c.fault in ("status", "reset")}
        assert len([c for c in calls if c.fault]) == 9
        assert len(calls) == SMALL_SCHOOL_MESSAGES + 9  # each fault cost one call, no more
        # Any of those may have reached Slack, so each was looked for before resending.
        for row_id in troubled:
            assert rows[row_id].attempts >= 2
        searched = standin.calls_to("conversations.history", ok_only=True)
        assert {c.params["channel"] for c in searched} == {
            standin.dm_channel_for(rows[row_id].channel) for row_id in troubled
        }


async def hang_past_the_timeout(
    db_url: str, tmp_path: Path, *, timeout: float, hang: float, backoff: float
) -> None:
    """Slack takes `hang` s over one DM: Vigil gives up after `timeout` s, and retries
    (after `backoff` × 0.5 to 1 s) only once Slack has in fact posted it."""
    async with running(
        db_url, tmp_path, overrides={"VIGIL_SLACK_TIMEOUT": timeout}, base_backoff=backoff
    ) as harness:
        harness.standin.inject_hang("chat.postMessage", seconds=hang, count=1)
        await report(harness)
        await harness.delivered(timeout=timeout + hang + backoff + 3)
        rows = await assert_delivered_exactly_once(harness, messages=SMALL_SCHOOL_MESSAGES)

        (late,) = [call for call in posts(harness) if call.fault == "hang"]
        assert late.ok and late.answered_at is not None, "Slack did post it, late"
        row = rows[outbox_id(late)]
        assert row.attempts == 2, "the slow call was not given up on"
        # Found in the DM's history and recorded, not posted again.
        assert [c for c in posts(harness) if outbox_id(c) == row.id] == [late]
        assert row.result_ts == late.response["ts"]  # type: ignore[index]
        searched = harness.standin.calls_to("conversations.history", ok_only=True)
        assert [c.params["channel"] for c in searched] == [row.result_channel]
        assert searched[0].at > late.answered_at


async def test_a_call_that_times_out_but_was_posted_late_is_found_not_resent(
    db_url: str, tmp_path: Path
) -> None:
    await hang_past_the_timeout(db_url, tmp_path, timeout=1, hang=1.2, backoff=1.2)


async def test_a_sub_second_slack_timeout_is_honoured(db_url: str, tmp_path: Path) -> None:
    await hang_past_the_timeout(db_url, tmp_path, timeout=0.3, hang=0.5, backoff=1.0)


async def test_a_refusal_that_cannot_get_better_fails_that_message_only(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path) as harness:
        harness.standin.inject_error("chat.postMessage", "user_not_found")
        await report(harness)
        await harness.delivered(timeout=5)
        (refused,) = [call for call in posts(harness) if call.fault == "error"]
        rows = await assert_delivered_exactly_once(
            harness, messages=SMALL_SCHOOL_MESSAGES, failed=[outbox_id(refused)]
        )
        row = rows[outbox_id(refused)]
        assert (row.status, row.last_error, row.attempts) == (
            outbox.FAILED,
            "user_not_found",
            1,
        )
        assert [c for c in posts(harness) if outbox_id(c) == row.id] == [refused]  # no retry

        # The worker carries on: the next concern is delivered in full.
        await report(harness)
        await harness.delivered(timeout=5)
        await assert_delivered_exactly_once(
            harness, messages=2 * SMALL_SCHOOL_MESSAGES, failed=[row.id]
        )


# -- a process that dies mid-delivery ------------------------------------------------------


async def crash(harness: Harness) -> None:
    """The process dies: its worker stops dead, recording no outcome for calls in hand."""
    task = harness.server.worker._task
    assert task is not None
    task.cancel()
    await asyncio.wait([task])


async def test_dms_in_flight_when_the_process_dies_are_not_sent_again(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path, lease=dt.timedelta(seconds=1)) as harness:
        standin = harness.standin
        standin.inject_hang("chat.postMessage", seconds=1.0, count=3)
        await report(harness)
        # Every DM has reached Slack; three are still being worked on when Vigil dies.
        await standin.wait_for_calls(
            "chat.postMessage", SMALL_SCHOOL_MESSAGES, ok_only=False, timeout=5
        )
        await crash(harness)
        held = [call for call in posts(harness) if call.fault == "hang"]
        assert len(held) == 3 and all(call.answered_at is None for call in held)
        # Slack finishes them after the process has gone: Vigil never hears the answers.
        await standin.wait_for_calls("chat.postMessage", SMALL_SCHOOL_MESSAGES, timeout=5)
        assert {outbox_id(call) for call in held} <= set(messages_by_row(harness))

        await harness.restart(lease=dt.timedelta(seconds=0.5), **FAST)
        await harness.delivered(timeout=5)
        rows = await assert_delivered_exactly_once(harness, messages=SMALL_SCHOOL_MESSAGES)
        assert len(posts(harness)) == SMALL_SCHOOL_MESSAGES, "a DM was posted twice"
        for call in held:  # the new process found them in Slack
            assert rows[outbox_id(call)].result_ts == call.response["ts"]  # type: ignore[index]
        assert len(standin.calls_to("conversations.history", ok_only=True)) >= len(held)


async def test_dms_claimed_but_never_sent_when_the_process_dies_are_sent_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(db_url, tmp_path, lease=dt.timedelta(seconds=0.5)) as harness:
        about_to_send = 0
        all_claimed = asyncio.Event()

        async def never_returns(**_arguments: Any) -> Any:
            """The process freezes just before each call leaves it."""
            nonlocal about_to_send
            about_to_send += 1
            if about_to_send == SMALL_SCHOOL_MESSAGES:
                all_claimed.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(harness.server.worker_client, "chat_postMessage", never_returns)
        await report(harness)
        await asyncio.wait_for(all_claimed.wait(), timeout=5)
        await crash(harness)
        assert posts(harness) == []
        rows = await outbox_rows(harness)
        assert all(r.status == outbox.PENDING and r.claimed_until for r in rows.values())

        await harness.restart(lease=dt.timedelta(seconds=0.5), **FAST)
        await harness.delivered(timeout=5)
        rows = await assert_delivered_exactly_once(harness, messages=SMALL_SCHOOL_MESSAGES)
        assert len(posts(harness)) == SMALL_SCHOOL_MESSAGES
        # The new process could not know the calls never left, so it looked first.
        searched = harness.standin.calls_to("conversations.history", ok_only=True)
        assert len(searched) == SMALL_SCHOOL_MESSAGES
        assert all(row.attempts == 2 for row in rows.values())


# -- replicas ------------------------------------------------------------------------------


async def test_two_workers_draining_one_backlog_never_send_twice(
    db_url: str, tmp_path: Path
) -> None:
    if is_sqlite(db_url):
        pytest.skip(
            "SQLite supports a single Vigil process; concurrent workers rely on "
            "PostgreSQL's FOR UPDATE SKIP LOCKED"
        )
    async with running(db_url, tmp_path, staff=BIG_STAFF) as harness:
        await harness.server.worker.stop()  # the backlog builds up
        await report(harness)
        second_engine = create_engine(db_url)
        workers = [
            DeliveryWorker(factory=factory, client=harness.server.worker_client, **options)
            for factory in (harness.server.factory, session_factory(second_engine))
            for options in [{"batch_size": 4, "concurrency": 4, **FAST}]
        ]
        # The first calls are slow, so whichever worker makes them, the other carries on.
        harness.standin.inject_hang("chat.postMessage", seconds=0.2, count=4)
        try:
            for worker in workers:
                worker.start()
            await harness.delivered(timeout=5)
        finally:
            for worker in workers:
                await worker.stop()
            await second_engine.dispose()

        rows = await assert_delivered_exactly_once(harness, messages=BIG_SCHOOL_MESSAGES)
        assert len(posts(harness)) == BIG_SCHOOL_MESSAGES
        assert all(row.attempts == 1 for row in rows.values()), "a row was claimed twice"
        assert [worker.delivered > 0 for worker in workers] == [True, True]
        assert sum(worker.delivered for worker in workers) == BIG_SCHOOL_MESSAGES


async def test_a_claim_lost_with_its_connection_is_released_not_left_to_its_lease(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection dies as the claim commits: the worker cannot know the rows are
    its. Once the database answers again it gives them back and sends them at once,
    rather than after the (here one-hour) lease."""
    async with running(db_url, tmp_path, lease=dt.timedelta(hours=1)) as harness:
        worker = harness.server.worker
        real_claim = outbox.claim
        lost = []

        async def claim_then_lose_the_connection(session: Any, **kwargs: Any) -> Any:
            if lost:
                return await real_claim(session, **kwargs)
            async with harness.server.factory() as other, other.begin():
                lost.extend(await real_claim(other, **kwargs))  # committed...
            raise ConnectionResetError("connection lost at COMMIT")  # ...but unknown here

        monkeypatch.setattr(outbox, "claim", claim_then_lose_the_connection)
        await report(harness)
        await harness.delivered(timeout=5)
        assert lost and all(row.claimed_by == worker.identity for row in lost)
        rows = await assert_delivered_exactly_once(harness, messages=SMALL_SCHOOL_MESSAGES)
        assert len(posts(harness)) == SMALL_SCHOOL_MESSAGES
        # Never sent before, so never looked for in Slack.
        assert harness.standin.calls_to("conversations.history") == []
        assert all(row.claimed_by is None and row.attempts == 1 for row in rows.values())
