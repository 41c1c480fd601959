"""PostgreSQL restarted under a running Vigil (DESIGN §2.2): requests during the outage
fail cleanly, nothing half-written remains, and Vigil recovers by itself.

The server runs against a PostgreSQL cluster of the test's own (`private_postgres`),
which the test stops and starts; the shared server other tests use is not touched.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from handlers.concern import FORM_UNAVAILABLE, SAVE_FAILED
from handlers.concern_modal import PUPIL_SEARCH
from store import outbox
from store.db import create_engine
from store.migrate import upgrade
from store.models import (
    Alert,
    Incident,
    IncidentCategory,
    IncidentPupil,
    OutboxMessage,
    ReadReceipt,
)
from testing.harness import Harness
from tests.support.outbox_checks import check_delivered_exactly_once
from tests.support.private_postgres import PrivateCluster
from tests.support.school import DSL, PUPIL_4B, TEACHER, seeded_school

NARRATIVE = "Said an older boy at the bus stop keeps asking for his dinner money."
MESSAGES_PER_CONCERN = 4 + 1 + 1  # four key-holders, the other 4B teacher, the receipt
RECOVERY_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    found, why = PrivateCluster.find()
    if found is None:
        pytest.skip(f"no private PostgreSQL for the outage tests: {why}")
    try:
        found.init()
        found.start()
        yield found
    finally:
        found.destroy()


@pytest.fixture
async def database(cluster: PrivateCluster) -> str:
    name = f"vigil_{time.monotonic_ns()}"
    url = await cluster.create_database(name)
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture
async def school(database: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with seeded_school(database, tmp_path) as harness:
        yield harness


async def submit(harness: Harness, view: dict[str, Any], pupil: dict[str, Any], text: str) -> Any:
    return await harness.slack.view_submission(
        TEACHER,
        view=view,
        values={
            "pupil": pupil,
            "narrative": text,
            "categories": ["Well-being"],
            "parents_contacted": "yes",
        },
    )


async def healthz(harness: Harness) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{harness.server.url}/healthz") as response,
    ):
        return response.status


async def wait_healthy(harness: Harness) -> float:
    started = time.monotonic()
    while await healthz(harness) != 200:
        assert time.monotonic() - started < RECOVERY_TIMEOUT, "Vigil did not recover"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def assert_nothing_half_written(harness: Harness) -> int:
    """Every stored concern is whole: its pupil, categories, alerts and their outbox
    rows (and the receipt) were all written with it. Returns how many there are."""
    async with harness.server.factory() as session:
        incidents = (await session.scalars(select(Incident.id))).all()
        for incident_id in incidents:
            pupils = await session.scalar(
                select(func.count()).where(IncidentPupil.incident_id == incident_id)
            )
            categories = await session.scalar(
                select(func.count()).where(IncidentCategory.incident_id == incident_id)
            )
            alert_ids = (
                await session.scalars(select(Alert.id).where(Alert.incident_id == incident_id))
            ).all()
            queued = await session.scalar(
                select(func.count()).where(OutboxMessage.alert_id.in_(alert_ids))
            )
            assert pupils == 1 and categories == 1, incident_id
            assert len(alert_ids) == MESSAGES_PER_CONCERN - 1 and queued == len(alert_ids)
        receipts = await session.scalar(
            select(func.count()).where(OutboxMessage.kind == outbox.RECEIPT)
        )
        assert receipts == len(incidents)
    return len(incidents)


async def test_an_outage_fails_cleanly_and_vigil_recovers_by_itself(
    school: Harness, cluster: PrivateCluster
) -> None:
    harness = school
    web = await harness.sign_in(DSL)
    response = await harness.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE, categories=["Well-being"]
    )
    assert response.status == 200 and not response.body
    await harness.delivered()
    # A teacher has the form open, and the DSL an alert in Slack, when the database goes.
    view = await harness.open_concern(TEACHER)
    pupil = await harness.pick_pupil(TEACHER, view, PUPIL_4B)
    channel = harness.standin.dm_channel_for(DSL)
    (alert_message,) = harness.standin.messages_in(channel)

    cluster.stop("fast")
    try:
        assert await healthz(harness) == 503

        # The form stays open and says nothing was saved.
        refused = await submit(harness, view, pupil, f"{NARRATIVE} (during the outage)")
        assert refused.status == 200
        assert refused.json == {
            "response_action": "errors",
            "errors": {"narrative": SAVE_FAILED},
        }

        # /concern still opens the form within Slack's 3 seconds (it needs no database):
        # the teacher can write while PostgreSQL comes back. The pupil search finds
        # nothing rather than failing.
        before = len(harness.standin.calls_to("views.open", ok_only=True))
        started = time.monotonic()
        command = await harness.slack.slash_command(TEACHER, command=harness.settings.command)
        assert command.status == 200 and time.monotonic() - started < 3
        assert len(harness.standin.calls_to("views.open", ok_only=True)) == before + 1
        await harness.server.tasks.idle()
        (*_, notice) = harness.standin.calls_to("views.update", ok_only=True)
        assert FORM_UNAVAILABLE in json.dumps(notice.params["view"])
        search = await harness.slack.block_suggestion(
            TEACHER, view=view, action_id=PUPIL_SEARCH, block_id="pupil", value="Z0"
        )
        assert search.status == 200 and search.json == {"options": []}, search.body

        # Mark as read: the DSL is told it did not take.
        before = len(harness.standin.calls_to("chat.postEphemeral"))
        clicked = await harness.slack.click_button(
            DSL, alert_message, "alert_mark_read", channel_id=channel
        )
        assert clicked.status == 200
        (told, *_) = harness.standin.calls_to("chat.postEphemeral")[before:]
        assert "try again" in told.params["text"].lower()

        # The web view: a plain page saying so, not a stack trace.
        status, page = await web.get("/alerts")
        assert status == 503
        assert "database" in page.lower() and "Traceback" not in page
    finally:
        cluster.start()

    waited = await wait_healthy(harness)
    assert waited < RECOVERY_TIMEOUT
    # The same form, submitted again, is saved; everything works as before.
    saved = await submit(harness, view, pupil, f"{NARRATIVE} (after the outage)")
    assert saved.status == 200 and not saved.body, saved.body
    await harness.delivered(timeout=10)
    await check_delivered_exactly_once(
        harness.server.factory, harness.standin, messages=2 * MESSAGES_PER_CONCERN
    )
    assert await assert_nothing_half_written(harness) == 2
    status, page = await web.get("/alerts")
    assert status == 200
    clicked = await harness.slack.click_button(
        DSL, alert_message, "alert_mark_read", channel_id=channel
    )
    assert clicked.status == 200
    async with harness.server.factory() as session:
        assert await session.scalar(select(func.count()).select_from(ReadReceipt)) == 1
    await web.close()


async def test_a_crash_in_the_middle_of_submissions_leaves_only_whole_concerns(
    school: Harness, cluster: PrivateCluster
) -> None:
    """PostgreSQL dies (`immediate`: no clean goodbye) while 12 teachers press Submit."""
    harness = school
    forms = []
    for _ in range(12):
        view = await harness.open_concern(TEACHER)
        forms.append((view, await harness.pick_pupil(TEACHER, view, PUPIL_4B)))

    async def one(index: int) -> Any:
        view, pupil = forms[index]
        await asyncio.sleep(index * 0.03)
        return await submit(harness, view, pupil, f"{NARRATIVE} ({index})")

    submissions = asyncio.gather(*(one(i) for i in range(len(forms))))
    await asyncio.sleep(0.15)  # about half have been pressed
    await asyncio.to_thread(cluster.stop, "immediate")
    try:
        answers = await submissions
    finally:
        cluster.start()
    await wait_healthy(harness)

    saved = [i for i, a in enumerate(answers) if a.status == 200 and not a.body]
    refused = [i for i, a in enumerate(answers) if i not in saved]
    for index in refused:  # each refusal keeps the form open, saying nothing was saved
        assert answers[index].json == {
            "response_action": "errors",
            "errors": {"narrative": SAVE_FAILED},
        }, answers[index].body
    stored = await assert_nothing_half_written(harness)
    async with harness.server.factory() as session:
        views = set((await session.scalars(select(Incident.slack_view_id))).all())
    # Everything a teacher was told is saved is there (a refused one may also be there,
    # if the commit landed just as the connection died: pressing Submit again then
    # finds it by its view id rather than storing it twice).
    assert {forms[i][0]["id"] for i in saved} <= views
    assert stored >= len(saved)

    # Those refused press Submit again: now every form is stored, once.
    for index in refused:
        view, pupil = forms[index]
        again = await submit(harness, view, pupil, f"{NARRATIVE} ({index})")
        assert again.status == 200 and not again.body, again.body
    assert await assert_nothing_half_written(harness) == len(forms)
    await harness.delivered(timeout=20)
    await check_delivered_exactly_once(
        harness.server.factory, harness.standin, messages=len(forms) * MESSAGES_PER_CONCERN
    )
