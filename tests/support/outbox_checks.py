"""What "delivered exactly once" means, checked the way people would see it.

Shared by the delivery tests (in-process server) and the fault tests (a `vigil serve`
process that may be killed): each outbox row is `sent` and is exactly one message in its
recipient's DM in the Slack stand-in, and each alert records that message. Every DM
carries its outbox row's id in Slack message metadata, so messages are matched to rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from scheduler.delivery import METADATA_TYPE
from store import outbox
from store.db import SessionFactory
from store.models import Alert, OutboxMessage, Staff
from testing.standin import RecordedCall, SlackStandIn


def outbox_id(call: RecordedCall) -> int:
    """The outbox row a chat.postMessage call was sending."""
    return int(call.params["metadata"]["event_payload"]["outbox_id"])


def messages_by_row(standin: SlackStandIn) -> dict[int, list[dict[str, Any]]]:
    """Every message Vigil has in Slack, keyed by the outbox row it came from."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message in standin.messages.values():
        metadata = message.get("metadata") or {}
        assert metadata.get("event_type") == METADATA_TYPE, "a message without its outbox id"
        found[int(metadata["event_payload"]["outbox_id"])].append(message)
    return found


async def outbox_rows(factory: SessionFactory) -> dict[int, OutboxMessage]:
    async with factory() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return {row.id: row for row in rows}


async def check_delivered_exactly_once(
    factory: SessionFactory,
    standin: SlackStandIn,
    *,
    messages: int,
    failed: Iterable[int] = (),
) -> dict[int, OutboxMessage]:
    """Each outbox row but `failed` is `sent` and is exactly one message in Slack, in
    its recipient's DM; each alert records that message. Returns the rows by id."""
    failed = set(failed)
    rows = await outbox_rows(factory)
    assert len(rows) == messages
    in_slack = messages_by_row(standin)
    assert set(in_slack) == set(rows) - failed, "lost or stray messages"
    for row in rows.values():
        if row.id in failed:
            continue
        (message,) = in_slack[row.id]  # exactly one
        assert row.status == outbox.SENT, (row.id, row.status, row.last_error)
        assert row.result_channel == standin.dm_channel_for(row.channel)
        assert row.result_ts == message["ts"]
        assert row.claimed_until is None and not row.uncertain

    # What each person sees: one DM per concern, whatever went wrong on the way.
    recipients = Counter(row.channel for row in rows.values() if row.id not in failed)
    for user, expected in recipients.items():
        assert len(standin.messages_for_user(user)) == expected, user

    async with factory() as session:
        alerts = (
            await session.execute(
                select(Alert, Staff.slack_user_id).join(Staff, Staff.id == Alert.recipient_id)
            )
        ).all()
    alert_rows = {row.alert_id: row for row in rows.values() if row.kind == outbox.ALERT}
    assert {alert.id for alert, _ in alerts} == set(alert_rows)
    for alert, slack_user_id in alerts:
        row = alert_rows[alert.id]
        assert row.channel == slack_user_id
        if row.id in failed:
            assert alert.delivered_at is None and alert.slack_ts is None
            continue
        assert alert.delivered_at is not None
        assert (alert.slack_channel, alert.slack_ts) == (row.result_channel, row.result_ts)
    return rows
