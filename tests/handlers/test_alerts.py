"""Mark as read: a receipt for the recipient only, and the DM updated in place."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from store.models import Alert, AuditEvent, ReadReceipt, Staff
from testing.harness import Harness
from tests.support.school import DEPUTY, DSL, PUPIL_4B, TEACHER


async def alert_dm(school: Harness, user: str) -> dict:
    await school.report_concern(
        TEACHER,
        pupil_query=PUPIL_4B,
        narrative="Came in upset and would not say why.",
        categories=["Well-being"],
    )
    await school.delivered()
    messages = school.standin.messages_for_user(user)
    assert len(messages) == 1
    return messages[0]


async def test_recipient_marks_alert_read_and_the_dm_changes_in_place(school: Harness) -> None:
    message = await alert_dm(school, DSL)
    channel = school.standin.dm_channel_for(DSL)
    response = await school.slack.click_button(DSL, message, "alert_mark_read", channel_id=channel)
    assert response.status == 200
    await school.delivered()
    async with school.server.factory() as session:
        receipt = await session.scalar(
            select(ReadReceipt).join(Staff, Staff.id == ReadReceipt.staff_id)
        )
    assert receipt is not None and receipt.via == "slack"
    updates = school.standin.calls_to("chat.update", ok_only=True)
    assert len(updates) == 1 and updates[0].params["ts"] == message["ts"]
    updated = school.standin.messages[(channel, message["ts"])]
    blocks = json.dumps(updated["blocks"])
    assert "Read" in blocks and "alert_mark_read" not in blocks and "alert_open" in blocks


async def test_marking_twice_keeps_the_first_receipt(school: Harness) -> None:
    message = await alert_dm(school, DSL)
    channel = school.standin.dm_channel_for(DSL)
    for _ in range(2):
        await school.slack.click_button(DSL, message, "alert_mark_read", channel_id=channel)
    await school.delivered()
    async with school.server.factory() as session:
        receipts = (await session.scalars(select(ReadReceipt))).all()
    assert len(receipts) == 1
    assert len(school.standin.calls_to("chat.update", ok_only=True)) == 1


async def test_a_double_tap_at_the_same_moment_is_one_receipt_and_no_error(
    school: Harness,
) -> None:
    message = await alert_dm(school, DSL)
    channel = school.standin.dm_channel_for(DSL)
    taps = [
        school.slack.click_button(DSL, message, "alert_mark_read", channel_id=channel)
        for _ in range(4)
    ]
    responses = await asyncio.gather(*taps)
    assert [response.status for response in responses] == [200] * 4
    await school.delivered()
    async with school.server.factory() as session:
        receipts = (await session.scalars(select(ReadReceipt))).all()
        reads = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.read"))
        ).all()
    assert len(receipts) == 1
    assert len(reads) == 1
    assert len(school.standin.calls_to("chat.update", ok_only=True)) == 1


async def test_only_the_recipient_can_mark_their_alert(school: Harness) -> None:
    message = await alert_dm(school, DSL)
    # Someone else replays the DSL's button payload from their own account.
    response = await school.slack.click_button(
        DEPUTY, message, "alert_mark_read", channel_id=school.standin.dm_channel_for(DSL)
    )
    assert response.status == 200
    async with school.server.factory() as session:
        assert (await session.scalars(select(ReadReceipt))).all() == []
        alert = await session.scalar(
            select(Alert)
            .join(Staff, Staff.id == Alert.recipient_id)
            .where(Staff.slack_user_id == DSL)
        )
    assert alert is not None
    ephemerals = school.standin.calls_to("chat.postEphemeral")
    assert ephemerals and ephemerals[0].params["user"] == DEPUTY
    assert school.standin.calls_to("chat.update") == []


async def test_forged_alert_id_is_refused(school: Harness) -> None:
    message = await alert_dm(school, DSL)
    response = await school.slack.block_actions(
        DSL,
        action_id="alert_mark_read",
        value="not-a-number",
        message=message,
        channel_id=school.standin.dm_channel_for(DSL),
    )
    assert response.status == 200
    async with school.server.factory() as session:
        assert (await session.scalars(select(ReadReceipt))).all() == []


async def test_app_home_lists_unread_alerts_and_marks_them_read(school: Harness) -> None:
    await alert_dm(school, DSL)
    response = await school.slack.event(
        {"type": "app_home_opened", "user": DSL, "channel": "D0HOME", "tab": "home"}
    )
    assert response.status == 200
    await school.standin.wait_for_calls("views.publish", 1)
    home = school.standin.home_views[DSL]
    text = json.dumps(home["blocks"])
    assert "#1" in text and "Well-being" in text and "upset" not in text
    response = await school.slack.block_actions(
        DSL,
        action_id="alert_mark_read",
        value=home["blocks"][1]["accessory"]["value"],
        view=home,
    )
    assert response.status == 200
    await school.server.tasks.idle()
    await school.delivered()
    assert "Nothing unread" in json.dumps(school.standin.home_views[DSL]["blocks"])
    assert len(school.standin.calls_to("chat.update", ok_only=True)) == 1


async def refused_mark_reads(school: Harness) -> list[tuple[str | None, str | None]]:
    async with school.server.factory() as session:
        rows = await session.execute(
            select(AuditEvent.actor_slack_id, AuditEvent.detail).where(
                AuditEvent.action == "alert.read", AuditEvent.outcome == "refused"
            )
        )
        return [(who, detail) for who, detail in rows]


async def test_a_refused_mark_as_read_is_audited(school: Harness) -> None:
    message = await alert_dm(school, DSL)
    channel = school.standin.dm_channel_for(DSL)
    await school.slack.click_button(DEPUTY, message, "alert_mark_read", channel_id=channel)
    for value in ("not-a-number", "99999999"):  # forged, or an alert that is not there
        await school.slack.block_actions(
            DSL, action_id="alert_mark_read", value=value, message=message, channel_id=channel
        )
    refused = await refused_mark_reads(school)
    assert [who for who, _ in refused] == [DEPUTY, DSL, DSL]
    assert all(detail and detail.startswith("slack;") for _, detail in refused)
    assert refused[1][1] == "slack; no alert id"
    assert refused[2][1] == "slack; alert 99999999: not theirs or not there"


async def test_a_refusal_slack_cannot_show_is_still_a_clean_answer(school: Harness) -> None:
    message = await alert_dm(school, DSL)
    school.standin.inject_error("chat.postEphemeral", "channel_not_found")
    response = await school.slack.click_button(
        DEPUTY, message, "alert_mark_read", channel_id=school.standin.dm_channel_for(DSL)
    )
    assert response.status == 200
    assert [who for who, _ in await refused_mark_reads(school)] == [DEPUTY]
