"""Read-only queries for the web view's pages (my alerts, read receipts, audit, staff).

Nothing here decides who may see an incident: the pages ask `store.access` first and
only then call these with that incident's id. Each query is scoped to one workspace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store import audit
from store.models import (
    Alert,
    AuditEvent,
    Incident,
    IncidentAction,
    IncidentCategory,
    ReadReceipt,
    Staff,
)
from store.staff import staff_names

# What an alert was about, from the recipient's point of view.
NEW_CONCERN, ACTION, SHARED = "new", "action", "shared"


def alert_kind(*, reason: str, action_id: int | None) -> str:
    if action_id is not None:
        return ACTION
    if reason == "invited":
        return SHARED
    return NEW_CONCERN


@dataclass(frozen=True)
class AlertRow:
    """One line of "My alerts": never the narrative or a pupil, only what Slack shows."""

    alert_id: int
    incident_id: int
    number: int
    author_name: str
    categories: list[str]
    created_at: dt.datetime
    kind: str
    read_at: dt.datetime | None


async def current_categories_for(
    session: AsyncSession, *, incident_ids: Iterable[int]
) -> dict[int, list[str]]:
    """Each incident's categories now: its latest re-categorisation, else the originals."""
    ids = list(dict.fromkeys(incident_ids))
    if not ids:
        return {}
    found: dict[int, list[str]] = {}
    originals = await session.execute(
        select(IncidentCategory.incident_id, IncidentCategory.name)
        .where(IncidentCategory.incident_id.in_(ids))
        .order_by(IncidentCategory.incident_id, IncidentCategory.position)
    )
    for incident_id, name in originals:
        found.setdefault(incident_id, []).append(name)
    # An action without a re-categorisation may hold JSON null rather than SQL NULL,
    # so the latest list is picked here rather than with IS NOT NULL.
    actions = await session.execute(
        select(IncidentAction.incident_id, IncidentAction.categories)
        .where(IncidentAction.incident_id.in_(ids))
        .order_by(IncidentAction.id)
    )
    for incident_id, categories in actions:
        if categories:
            found[incident_id] = list(categories)
    return found


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
        .where(Alert.workspace_id == workspace_id, Alert.recipient_id == staff_id)
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
    reason: str
    kind: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    via: str | None


async def receipts(session: AsyncSession, *, incident_id: int) -> list[ReceiptRow]:
    """Every alert on the incident (including those about its actions), in order."""
    rows = await session.execute(
        select(
            Alert.id,
            Alert.recipient_id,
            Staff.name,
            Alert.reason,
            Alert.action_id,
            Alert.created_at,
            ReadReceipt.read_at,
            ReadReceipt.via,
        )
        .join(Staff, Staff.id == Alert.recipient_id)
        .outerjoin(ReadReceipt, ReadReceipt.alert_id == Alert.id)
        .where(Alert.incident_id == incident_id)
        .order_by(Alert.created_at, Alert.id)
    )
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
        )
        for alert_id, recipient_id, name, reason, action_id, created_at, read_at, via in rows
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
        )
        .order_by(Alert.id)
    )
    return list(rows)


async def incident_id_by_number(
    session: AsyncSession, *, workspace_id: int, number: int
) -> int | None:
    """The id of the workspace's incident with this number (for audit entries only)."""
    return await session.scalar(
        select(Incident.id).where(Incident.workspace_id == workspace_id, Incident.number == number)
    )


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: dt.datetime
    actor_name: str | None
    actor_slack_id: str | None
    action: str
    outcome: str
    incident_number: int | None
    subject_name: str | None
    ip: str | None
    detail: str | None


async def audit_rows(
    session: AsyncSession,
    *,
    workspace_id: int,
    person_id: int | None = None,
    incident_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditRow]:
    """The audit log, newest first, with people's names and incident numbers."""
    events: Sequence[AuditEvent] = await audit.entries(
        session,
        workspace_id=workspace_id,
        actor_id=person_id,
        incident_id=incident_id,
        before_id=before_id,
        limit=limit,
    )
    staff_ids = {i for e in events for i in (e.actor_id, e.subject_id) if i is not None}
    incident_ids = {e.incident_id for e in events if e.incident_id is not None}
    names = await staff_names(session, ids=staff_ids)
    numbers: dict[int, int] = {}
    if incident_ids:
        numbers = dict(
            (
                await session.execute(
                    select(Incident.id, Incident.number).where(Incident.id.in_(incident_ids))
                )
            ).all()
        )
    return [
        AuditRow(
            id=e.id,
            at=e.at,
            actor_name=names.get(e.actor_id) if e.actor_id is not None else None,
            actor_slack_id=e.actor_slack_id,
            action=e.action,
            outcome=e.outcome,
            incident_number=numbers.get(e.incident_id) if e.incident_id is not None else None,
            subject_name=names.get(e.subject_id) if e.subject_id is not None else None,
            ip=e.ip,
            detail=e.detail,
        )
        for e in events
    ]
