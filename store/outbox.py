"""The outbox: Slack calls that must happen, stored with the change that causes them.

Rows are written in the caller's transaction (so an alert exists if and only if its
incident does), claimed by a delivery worker with a lease (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so replicas never claim the same row), and closed with an outcome.

A row whose previous attempt may have reached Slack (a time-out, a 5xx, a reset
connection, or a worker that died holding the lease) is flagged `uncertain`; the worker
looks for it in Slack before sending again, so nothing is sent twice.

On PostgreSQL the transaction that adds a row also sends `NOTIFY vigil_outbox` (at its
COMMIT, so never for a row rolled back): a delivery worker in another process LISTENs and
is woken at once (`scheduler.delivery.DeliveryWorker`); SQLite has no NOTIFY, and its one
server's worker is woken in-process and polls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    String,
    case,
    event,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from store import bulk
from store.db import rowcount
from store.enums import OutboxKind, OutboxStatus
from store.models import Alert, OutboxMessage, Staff, utcnow

PENDING, SENT, FAILED = OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.FAILED

# Kinds of message (see `OutboxKind`).
ALERT = OutboxKind.ALERT
ALERT_UPDATE = OutboxKind.ALERT_UPDATE
RECEIPT = OutboxKind.RECEIPT
CHANNEL = OutboxKind.CHANNEL
NUDGE = OutboxKind.NUDGE
MESSAGE_UPDATE = OutboxKind.MESSAGE_UPDATE
NOTICE = OutboxKind.NOTICE
URGENT = OutboxKind.URGENT
CHASE = OutboxKind.CHASE
TASK = OutboxKind.TASK


#: The PostgreSQL channel a commit that queued messages NOTIFYs, and delivery LISTENs on.
NOTIFY_CHANNEL = "vigil_outbox"
_NOTIFY = "outbox_notify"  # the session's note that it queued a message


@event.listens_for(Session, "before_commit")
def _notify_delivery(session: Session) -> None:
    """In the transaction that queued messages: NOTIFY the delivery workers (PostgreSQL)."""
    if session.info.pop(_NOTIFY, False) and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


@event.listens_for(Session, "after_rollback")
def _nothing_to_notify(session: Session) -> None:
    session.info.pop(_NOTIFY, None)


def enqueue(
    session: AsyncSession,
    *,
    workspace_id: int,
    kind: OutboxKind,
    channel: str,
    payload: dict[str, Any],
    alert_id: int | None = None,
    incident_id: int | None = None,
    now: dt.datetime | None = None,
) -> OutboxMessage:
    """Add a message to the outbox in the session's transaction."""
    row = OutboxMessage(
        workspace_id=workspace_id,
        kind=kind,
        channel=channel,
        payload=payload,
        alert_id=alert_id,
        incident_id=incident_id,
        status=PENDING,
        attempts=0,
        uncertain=False,
        next_attempt_at=now or utcnow(),
    )
    session.add(row)
    session.info[_NOTIFY] = True
    return row


def insert_many(session: AsyncSession, messages: Sequence[dict[str, Any]]) -> bulk.Rows:
    """New outbox rows for the caller to write in the session's transaction, in one
    statement with its other rows (`store.bulk`, `store.incidents`): each message a dict
    of `enqueue`'s keywords but `session` (`workspace_id`, `kind`, `channel`, `payload`,
    and `alert_id`, `incident_id`, `now` as needed; the last three the same for all)."""
    created = utcnow()
    rows = [
        {
            "workspace_id": m["workspace_id"],
            "kind": m["kind"],
            "channel": m["channel"],
            "payload": m["payload"],
            "alert_id": m.get("alert_id"),
            "incident_id": m.get("incident_id"),
            "status": PENDING,
            "attempts": 0,
            "uncertain": False,
            "next_attempt_at": m.get("now") or created,
            "created_at": created,
        }
        for m in messages
    ]
    if rows:
        session.info[_NOTIFY] = True
    varying = ("workspace_id", "kind", "channel", "payload", "alert_id")
    return bulk.Rows(bulk.table_of(OutboxMessage), rows, varying)


def dm_each(
    session: AsyncSession,
    *,
    workspace_id: int,
    people: Iterable[Staff],
    payload: dict[str, Any],
    kind: OutboxKind = NOTICE,
    incident_id: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Queue the same `payload` as a DM to each of `people` who has a Slack id (a nudge,
    a notice), in the session's transaction. Returns how many were queued."""
    queued = 0
    for person in people:
        if person.slack_user_id:
            enqueue(
                session,
                workspace_id=workspace_id,
                kind=kind,
                channel=person.slack_user_id,
                payload=payload,
                incident_id=incident_id,
                now=now,
            )
            queued += 1
    return queued


def enqueue_alert(
    session: AsyncSession,
    *,
    alert: Alert,
    channel: str,
    payload: dict[str, Any],
    kind: OutboxKind = ALERT,
    now: dt.datetime | None = None,
) -> OutboxMessage:
    """Add an alert's DM (or an update of it), tied to the alert: marking it read finds the
    DM by its alert."""
    return enqueue(
        session,
        workspace_id=alert.workspace_id,
        kind=kind,
        channel=channel,
        payload=payload,
        alert_id=alert.id,
        incident_id=alert.incident_id,
        now=now,
    )


async def claim(
    session: AsyncSession,
    *,
    limit: int,
    lease: dt.timedelta,
    now: dt.datetime | None = None,
    worker: str | None = None,
) -> Sequence[OutboxMessage]:
    """Claim up to `limit` due rows for `worker` until the lease expires.

    A row still holding an expired lease was claimed by a worker that never reported
    back: it is claimed again, flagged uncertain.
    """
    now = now or utcnow()
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.scalars(due)).all())
    if not ids:
        return []
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(
            uncertain=OutboxMessage.uncertain | OutboxMessage.claimed_until.is_not(None),
            claimed_until=now + lease,
            claimed_by=worker,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


def unheld(row: OutboxMessage, now: dt.datetime) -> bool:
    """Pending, and no worker holds a lease on it: nobody is sending it right now.

    The lease condition of `claim()`'s query, for a row already loaded.
    """
    return row.status == PENDING and (row.claimed_until is None or row.claimed_until < now)


async def release_unheld(session: AsyncSession, *, worker: str) -> int:
    """Give back every pending row `worker` has claimed: it holds none of them in hand.

    For a worker whose claim failed as its connection died, not knowing whether the claim
    committed. It never called Slack for such rows, so they are not made uncertain (a
    row's earlier uncertainty is kept). Returns how many rows were released.
    """
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.claimed_by == worker, OutboxMessage.status == PENDING)
        .values(claimed_until=None, claimed_by=None, attempts=OutboxMessage.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def mark_sent(
    session: AsyncSession,
    *,
    message_id: int,
    channel: str | None,
    ts: str | None,
    now: dt.datetime | None = None,
) -> None:
    """Record that Slack accepted the message."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=SENT,
            sent_at=now or utcnow(),
            claimed_until=None,
            claimed_by=None,
            uncertain=False,
            last_error=None,
            result_channel=channel,
            result_ts=ts,
        )
    )


async def mark_many_sent(
    session: AsyncSession,
    *,
    sent: Sequence[tuple[int, str | None, str | None]],
    now: dt.datetime | None = None,
) -> None:
    """Record that Slack accepted these messages, `(id, channel, ts)` each: one UPDATE."""
    if not sent:
        return
    ids = [message_id for message_id, _, _ in sent]
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(
            status=SENT,
            sent_at=now or utcnow(),
            claimed_until=None,
            claimed_by=None,
            uncertain=False,
            last_error=None,
            result_channel=by_id(OutboxMessage.id, {i: channel for i, channel, _ in sent}),
            result_ts=by_id(OutboxMessage.id, {i: ts for i, _, ts in sent}),
        )
        .execution_options(synchronize_session=False)
    )


def by_id(key: Any, value_of: dict[int, str | None]) -> Any:
    """A CASE giving each row (by `key`) its own value: many rows set in one UPDATE."""
    return case({row_id: literal(value, String) for row_id, value in value_of.items()}, value=key)


async def retry_later(
    session: AsyncSession,
    *,
    message_id: int,
    at: dt.datetime,
    error: str,
    uncertain: bool,
    attempted: bool = True,
) -> None:
    """Put the row back for another attempt at `at`.

    `uncertain` says whether this attempt may have reached Slack; it is never cleared
    here, only by a successful send or by finding the message in Slack. `attempted` is
    False when no call was made (a rate-limit pause): the claim's attempt is given back,
    so waiting out a 429 storm does not lengthen a later backoff.
    """
    values: dict[str, Any] = {
        "next_attempt_at": at,
        "claimed_until": None,
        "claimed_by": None,
        "last_error": error,
    }
    if uncertain:
        values["uncertain"] = True
    if not attempted:
        values["attempts"] = OutboxMessage.attempts - 1
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )


async def mark_failed(session: AsyncSession, *, message_id: int, error: str) -> None:
    """Give up on a row Slack refused for good (e.g. the user no longer exists)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status=FAILED, claimed_until=None, claimed_by=None, last_error=error)
    )


async def pending_count(session: AsyncSession) -> int:
    """How many rows still wait to be delivered."""
    result = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == PENDING)
    )
    return int(result or 0)


async def failed_by_error(session: AsyncSession) -> dict[str, int]:
    """How many rows Slack refused for good, by the error it gave."""
    rows = await session.execute(
        select(OutboxMessage.last_error, func.count())
        .where(OutboxMessage.status == FAILED)
        .group_by(OutboxMessage.last_error)
    )
    return {str(error or "unknown"): int(count) for error, count in rows.all()}


async def requeue_failed(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Put every failed row back in the queue, due now (`vigil outbox retry`); how many.

    Each keeps its `uncertain` flag, so one that may have reached Slack is looked for
    before it is sent again.
    """
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == FAILED)
        .values(
            status=PENDING,
            next_attempt_at=now or utcnow(),
            claimed_until=None,
            claimed_by=None,
            attempts=0,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
