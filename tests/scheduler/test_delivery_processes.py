"""The outbox with several processes (issue 17): delivery woken across processes by
PostgreSQL's NOTIFY, sent messages recorded together, and one 429 pausing the method in
every process. Each worker here has an engine of its own, as another process would.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from scheduler.delivery import DeliveryWorker
from store.db import create_engine, is_sqlite, session_factory
from tests.scheduler.test_delivery import (
    BIG_SCHOOL_MESSAGES,
    BIG_STAFF,
    assert_delivered_exactly_once,
    posts,
    report,
    running,
)
from tests.support.school import FAST_WORKER


def postgresql_only(db_url: str) -> None:
    if is_sqlite(db_url):
        pytest.skip("SQLite runs one server process (no NOTIFY, one writer)")


async def test_a_commit_that_queues_dms_wakes_a_worker_listening_in_another_process(
    db_url: str, tmp_path: Path
) -> None:
    postgresql_only(db_url)
    async with running(db_url, tmp_path, staff=BIG_STAFF) as harness:
        await harness.server.worker.stop()  # the server only queues, as a worker process
        engine = create_engine(db_url)
        # It polls once a minute: only the NOTIFY of the submission's COMMIT can wake it.
        worker = DeliveryWorker(
            factory=session_factory(engine), client=harness.server.worker_client, poll_interval=60
        )
        try:
            worker.start()
            worker.listen(db_url, retry=0.2)
            await asyncio.sleep(1)  # listening, and its first look found nothing
            assert worker.delivered == 0
            started = time.monotonic()
            await report(harness)
            while worker.delivered < BIG_SCHOOL_MESSAGES:
                assert time.monotonic() - started < 10, "the NOTIFY did not wake the worker"
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()
            await engine.dispose()
        await assert_delivered_exactly_once(harness, messages=BIG_SCHOOL_MESSAGES)


async def test_sent_dms_are_recorded_together_not_a_transaction_each(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path, staff=BIG_STAFF) as harness:
        harness.standin.inject_hang("chat.postMessage", seconds=0.05, count=BIG_SCHOOL_MESSAGES)
        await report(harness)
        await harness.delivered(timeout=10)
        worker = harness.server.worker
        # Every DM's outcome and its alert's place in Slack are recorded...
        await assert_delivered_exactly_once(harness, messages=BIG_SCHOOL_MESSAGES)
        # ...in far fewer transactions than messages.
        assert worker.delivered == BIG_SCHOOL_MESSAGES
        assert worker.records_written <= BIG_SCHOOL_MESSAGES // 2, worker.records_written


async def test_a_429_met_in_one_process_pauses_the_method_in_another(
    db_url: str, tmp_path: Path
) -> None:
    postgresql_only(db_url)
    retry_after = 2
    async with running(db_url, tmp_path, staff=BIG_STAFF) as harness:
        await harness.server.worker.stop()  # the backlog builds up
        await report(harness)
        engines = [create_engine(db_url), create_engine(db_url)]
        first, second = (
            DeliveryWorker(
                factory=session_factory(engine),
                client=harness.server.worker_client,
                **{**FAST_WORKER, "batch_size": 4, "concurrency": 1},
            )
            for engine in engines
        )
        try:
            harness.standin.inject_status("chat.postMessage", 429, retry_after=retry_after, count=1)
            await first.run_once()  # meets the 429; its other rows wait unsent
            told = len(posts(harness))
            assert told == 1 and posts(harness)[0].status == 429
            # The second knows nothing of it in memory, and has due rows of its own.
            handled = await second.run_once()
            assert handled > 0
            assert len(posts(harness)) == told, "the other process called Slack in the pause"
            await asyncio.sleep(retry_after)
            second.start()
            await harness.delivered(timeout=10)
        finally:
            await second.stop()
            for engine in engines:
                await engine.dispose()
        await assert_delivered_exactly_once(harness, messages=BIG_SCHOOL_MESSAGES)
        assert len(posts(harness)) == BIG_SCHOOL_MESSAGES + 1
