"""Alerts after they are sent: read receipts, the Slack DM updated to match, and the
lists of alerts: unread ones for Slack's App Home, and the web view's (my alerts, an
incident's receipts).

Nothing here decides who may see an incident: the pages ask `store.access` first and
only then ask for that incident's receipts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store import messages, outbox
from store.access import not_about
from store.actions import current_categories_for, original_categories_for
from store.db import is_postgresql, is_storable_id, rowcount
from store.enums import AlertReason, ReadVia
from store.models import (
    Alert,
    Incident,
    IncidentInvite,
    OutboxMessage,
    ReadReceipt,
    Staff,
    utcnow,
)


class AlertNotFound(Exception):
    """No such alert for this person (the same answer whether it exists or not)."""


@dataclass(frozen=True)
class ReadResult:
    alert_id: int
    incident_id: int
    number: int
    read_at: dt.datetime
    newly_read: bool


async def mark_read(
    session: AsyncSession,
    *,
    alert_id: int,
    workspace_id: int,
    slack_user_id: str,
    public_url: str,
    via: ReadVia = ReadVia.SLACK,
    now: dt.datetime | None = None,
) -> ReadResult:
    """Record that the alert's own recipient read it, and queue the DM's update.

    Only the recipient can mark their alert; for anyone else it does not exist.
    Marking twice keeps the first receipt.
    """
    now = now or utcnow()
    if not is_storable_id(alert_id):
        raise AlertNotFound(alert_id)
    row = (
        await session.execute(
            select(Alert, Incident.number)
            .join(Incident, Incident.id == Alert.incident_id)
            .join(Staff, Staff.id == Alert.recipient_id)
            .where(
                Alert.id == alert_id,
                Alert.workspace_id == workspace_id,
                Staff.slack_user_id == slack_user_id,
                Alert.withdrawn_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise AlertNotFound(alert_id)
    alert, number = row
    if alert.receipt is not None:
        return ReadResult(
            alert.id, alert.incident_id, number, alert.receipt.read_at, newly_read=False
        )

    # Two taps at once (a double tap, or Slack and the web view together) race here: the
    # receipt's key decides, and the one that finds it taken reports it as read already.
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    taken = await session.execute(
        insert(ReadReceipt)
        .values(alert_id=alert.id, staff_id=alert.recipient_id, read_at=now, via=via.value)
        .on_conflict_do_nothing(index_elements=[ReadReceipt.alert_id])
    )
    if not rowcount(taken):
        first = await session.scalar(
            select(ReadReceipt.read_at).where(ReadReceipt.alert_id == alert.id)
        )
        return ReadResult(alert.id, alert.incident_id, number, first or now, newly_read=False)
    dm = await _locked_dm(session, alert)
    headline = str(((dm.payload if dm else None) or {}).get("text") or f"Concern #{number}")
    read_version = messages.alert(
        alert_id=alert.id,
        headline=headline,
        url=messages.incident_url(public_url, number),
        read_at=now,
    )
    _change_dm(session, alert=alert, dm=dm, payload=read_version, now=now)
    await session.flush()
    return ReadResult(alert.id, alert.incident_id, number, now, newly_read=True)


async def _locked_dm(session: AsyncSession, alert: Alert) -> OutboxMessage | None:
    """The alert's DM: locked, so the delivery worker cannot claim it meanwhile."""
    return await session.scalar(  # the latest: access given back is a new DM
        select(OutboxMessage)
        .where(OutboxMessage.alert_id == alert.id, OutboxMessage.kind == outbox.ALERT)
        .order_by(OutboxMessage.id.desc())
        .limit(1)
        .with_for_update()
    )


def _change_dm(
    session: AsyncSession,
    *,
    alert: Alert,
    dm: OutboxMessage | None,
    payload: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Make the alert's DM say `payload`: before it goes out if it has not, else in place
    (chat.update through the outbox) once it is in Slack."""
    if dm is not None and outbox.unheld(dm, now):
        dm.payload = payload  # not on its way yet: it goes out changed
    elif dm is None or dm.status != outbox.FAILED:
        outbox.enqueue_alert(  # sent, or being sent: changed in place once it is in Slack
            session,
            alert=alert,
            kind=outbox.ALERT_UPDATE,
            channel=alert.slack_channel or "",
            payload=payload,
            now=now,
        )


async def withdraw(
    session: AsyncSession, *, incident: Incident, person: Staff, now: dt.datetime
) -> list[int]:
    """Mark the person's alerts on the incident (and its actions) and their invitation as
    withdrawn, and change each alert's DM to say so. Returns the alerts withdrawn.

    The caller decides who may (`store.access.may_change_case`) and audits it."""
    alerts = (
        await session.scalars(
            select(Alert)
            .where(
                Alert.incident_id == incident.id,
                Alert.recipient_id == person.id,
                Alert.withdrawn_at.is_(None),
            )
            .order_by(Alert.id)
        )
    ).all()
    invite = await session.get(IncidentInvite, (incident.id, person.id))
    if invite is not None and invite.withdrawn_at is None:
        invite.withdrawn_at = now
    for alert in alerts:
        alert.withdrawn_at = now
        dm = await _locked_dm(session, alert)
        if dm is not None or alert.slack_ts is not None:
            payload = messages.alert_withdrawn(alert_id=alert.id, number=incident.number)
            _change_dm(session, alert=alert, dm=dm, payload=payload, now=now)
    await session.flush()
    return [a.id for a in alerts]


async def has_access_to_withdraw(session: AsyncSession, *, incident_id: int, staff_id: int) -> bool:
    """Whether the person has an alert or invitation on the incident not yet withdrawn."""
    alert = await session.scalar(
        select(Alert.id).where(
            Alert.incident_id == incident_id,
            Alert.recipient_id == staff_id,
            Alert.withdrawn_at.is_(None),
        )
    )
    if alert is not None:
        return True
    invite = await session.get(IncidentInvite, (incident_id, staff_id))
    return invite is not None and invite.withdrawn_at is None


async def mark_opened(
    session: AsyncSession, *, incident_id: int, staff_id: int, now: dt.datetime
) -> int:
    """The person opened the incident's page: their alerts on it are opened (the first
    time only). Returns how many were opened now."""
    result = await session.execute(
        update(Alert)
        .where(
            Alert.incident_id == incident_id,
            Alert.recipient_id == staff_id,
            Alert.opened_at.is_(None),
        )
        .values(opened_at=now)
    )
    return rowcount(result)


async def record_delivery(
    session: AsyncSession, *, alert_id: int, channel: str, ts: str, now: dt.datetime | None = None
) -> None:
    """Remember where the alert's DM is, so it can be updated in place."""
    await session.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(slack_channel=channel, slack_ts=ts, delivered_at=now or utcnow())
    )


async def record_deliveries(
    session: AsyncSession,
    *,
    delivered: Sequence[tuple[int, str, str]],
    now: dt.datetime | None = None,
) -> None:
    """`record_delivery` for many alerts, `(alert_id, channel, ts)` each: one UPDATE."""
    if not delivered:
        return
    ids = [alert_id for alert_id, _, _ in delivered]
    await session.execute(
        update(Alert)
        .where(Alert.id.in_(ids))
        .values(
            slack_channel=outbox.by_id(Alert.id, {i: channel for i, channel, _ in delivered}),
            slack_ts=outbox.by_id(Alert.id, {i: ts for i, _, ts in delivered}),
            delivered_at=now or utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class AlertSummary:
    """What may be shown of an alert in Slack: number, author, categories, when."""

    alert_id: int
    number: int
    author_slack_id: str | None
    categories: list[str]
    created_at: dt.datetime


async def unread_for(
    session: AsyncSession, *, workspace_id: int, slack_user_id: str, limit: int = 20
) -> list[AlertSummary]:
    """The person's unread alerts, newest first."""
    author = aliased(Staff)
    rows = (
        await session.execute(
            select(Alert.id, Incident.id, Incident.number, author.slack_user_id, Alert.created_at)
            .join(Incident, Incident.id == Alert.incident_id)
            .join(Staff, Staff.id == Alert.recipient_id)
            .join(author, author.id == Incident.author_id)
            .outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
            .where(
                Alert.workspace_id == workspace_id,
                Staff.slack_user_id == slack_user_id,
                ReadReceipt.alert_id.is_(None),
                Alert.withdrawn_at.is_(None),
                not_about(Alert.incident_id, Alert.recipient_id),
            )
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        )
    ).all()
    names = await original_categories_for(session, incident_ids=[r[1] for r in rows])
    return [
        AlertSummary(alert_id, number, author_id, names.get(incident_id, []), created_at)
        for alert_id, incident_id, number, author_id, created_at in rows
    ]


# -- the web view's lists -------------------------------------------------------------


class AlertKind(StrEnum):
    """What an alert was about, from the recipient's point of view."""

    NEW_CONCERN = "new"
    ACTION = "action"
    SHARED = "shared"


def alert_kind(*, reason: str, action_id: int | None) -> AlertKind:
    """An alert's kind, from why it was sent and whether it was about an action."""
    if action_id is not None:
        return AlertKind.ACTION
    if reason == AlertReason.INVITED:
        return AlertKind.SHARED
    return AlertKind.NEW_CONCERN


@dataclass(frozen=True)
class AlertRow:
    """One line of "My alerts": never the narrative or a pupil, only what Slack shows."""

    alert_id: int
    incident_id: int
    number: int
    author_name: str
    categories: list[str]
    created_at: dt.datetime
    kind: AlertKind
    read_at: dt.datetime | None


async def alerts_for(
    session: AsyncSession,
    *,
    workspace_id: int,
    staff_id: int,
    unread_limit: int = 200,
    read_limit: int = 50,
) -> tuple[list[AlertRow], bool]:
    """The person's alerts: every unread one (newest first), then the latest read ones.

    Returns the rows and whether older read alerts were left off.
    """
    author = aliased(Staff)
    base = (
        select(
            Alert.id,
            Incident.id,
            Incident.number,
            author.name,
            Alert.created_at,
            Alert.reason,
            Alert.action_id,
            ReadReceipt.read_at,
        )
        .join(Incident, Incident.id == Alert.incident_id)
        .join(author, author.id == Incident.author_id)
        .where(
            Alert.workspace_id == workspace_id,
            Alert.recipient_id == staff_id,
            Alert.withdrawn_at.is_(None),
            not_about(Alert.incident_id, Alert.recipient_id),
        )
        .order_by(Alert.created_at.desc(), Alert.id.desc())
    )
    unread = (
        await session.execute(
            base.outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
            .where(ReadReceipt.alert_id.is_(None))
            .limit(unread_limit)
        )
    ).all()
    read = (
        await session.execute(
            base.join(ReadReceipt, ReadReceipt.alert_id == Alert.id).limit(read_limit + 1)
        )
    ).all()
    more = len(read) > read_limit
    rows = list(unread) + list(read[:read_limit])
    categories = await current_categories_for(session, incident_ids=[r[1] for r in rows])
    return [
        AlertRow(
            alert_id=alert_id,
            incident_id=incident_id,
            number=number,
            author_name=author_name,
            categories=categories.get(incident_id, []),
            created_at=created_at,
            kind=alert_kind(reason=reason, action_id=action_id),
            read_at=read_at,
        )
        for (
            alert_id,
            incident_id,
            number,
            author_name,
            created_at,
            reason,
            action_id,
            read_at,
        ) in rows
    ], more


@dataclass(frozen=True)
class ReceiptRow:
    """Who was alerted on an incident, why, and whether they have read it."""

    alert_id: int
    recipient_id: int
    recipient_name: str
    reason: str  # an AlertReason
    kind: AlertKind
    created_at: dt.datetime
    read_at: dt.datetime | None  # acknowledged (Mark as read, in Slack or the web view)
    via: str | None  # a ReadVia, once read
    opened_at: dt.datetime | None = None  # first opened the incident's page
    withdrawn_at: dt.datetime | None = None  # a key-holder withdrew the person's access


_RECEIPTS = (  # `receipts`' statement, built once
    select(
        Alert.id,
        Alert.recipient_id,
        Staff.name,
        Alert.reason,
        Alert.action_id,
        Alert.created_at,
        ReadReceipt.read_at,
        ReadReceipt.via,
        Alert.withdrawn_at,
        Alert.opened_at,
    )
    .join(Staff, Staff.id == Alert.recipient_id)
    .outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
    .where(Alert.incident_id == bindparam("incident_id"))
    .order_by(Alert.created_at, Alert.id)
)


async def receipts(session: AsyncSession, *, incident_id: int) -> list[ReceiptRow]:
    """Every alert on the incident (including those about its actions), in order."""
    rows = await session.execute(_RECEIPTS, {"incident_id": incident_id})
    return [
        ReceiptRow(
            alert_id=alert_id,
            recipient_id=recipient_id,
            recipient_name=name,
            reason=reason,
            kind=alert_kind(reason=reason, action_id=action_id),
            created_at=created_at,
            read_at=read_at,
            via=via,
            withdrawn_at=withdrawn_at,
            opened_at=opened_at,
        )
        for (
            alert_id,
            recipient_id,
            name,
            reason,
            action_id,
            created_at,
            read_at,
            via,
            withdrawn_at,
            opened_at,
        ) in rows
    ]


async def unread_alert_ids(session: AsyncSession, *, incident_id: int, staff_id: int) -> list[int]:
    """The person's own unread alerts on one incident."""
    rows = await session.scalars(
        select(Alert.id)
        .outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
        .where(
            Alert.incident_id == incident_id,
            Alert.recipient_id == staff_id,
            ReadReceipt.alert_id.is_(None),
            Alert.withdrawn_at.is_(None),
        )
        .order_by(Alert.id)
    )
    return list(rows)
