"""Unread is chased: an alert on a restricted category still unopened after
`[unread] chase_after_working_hours` working hours is re-sent once to its recipient, and
listed for the DSLs (App Home, My alerts) while it stays unopened.

"Opened" is `alerts.opened_at` (the recipient viewed the incident's page), not Mark as
read. `alerts.chased_at` records the reminder, so it is sent once however often the
check runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store import messages, outbox
from store.actions import original_categories_for
from store.models import Alert, Incident, IncidentCategory, Staff
from store.school_config import SchoolConfig
from store.workspaces import in_school

log = structlog.get_logger(__name__)

CHASE_BATCH = 200


async def chase_unopened(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime,
    limit: int = CHASE_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Re-send, once, up to `limit` alerts on restricted categories still unopened after
    the configured working hours (only in working time). Returns how many were chased."""
    working = config.working_time
    if not working.is_working_time(now):
        return 0
    hours = config.chase_after_working_hours
    # N working hours take at least N real hours: a first cut the database can make.
    claimed = list(
        (
            await session.scalars(
                select(Alert)
                .where(
                    Alert.opened_at.is_(None),
                    Alert.chased_at.is_(None),
                    Alert.withdrawn_at.is_(None),  # access withdrawn: nothing to chase
                    Alert.created_at <= now - dt.timedelta(hours=hours),
                    *in_school(Alert.workspace_id, workspace_id),
                    select(IncidentCategory.incident_id)
                    .where(
                        IncidentCategory.incident_id == Alert.incident_id,
                        IncidentCategory.restricted.is_(True),
                    )
                    .exists(),
                )
                .order_by(Alert.created_at, Alert.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=Alert)
            )
        ).all()
    )
    due = []
    for alert in claimed:
        if working.add_working_hours(alert.created_at, hours) > now:
            break  # later alerts are due later still
        due.append(alert)
    if not due:
        return 0
    author = aliased(Staff)
    incidents = {
        incident_id: (number, slack_id)
        for incident_id, number, slack_id in await session.execute(
            select(Incident.id, Incident.number, author.slack_user_id)
            .join(author, author.id == Incident.author_id)
            .where(Incident.id.in_({a.incident_id for a in due}))
        )
    }
    categories = await original_categories_for(session, incident_ids=list(incidents))
    for alert in due:
        alert.chased_at = now
        person = alert.recipient
        if not (person.active and person.slack_user_id):
            continue
        number, author_slack = incidents[alert.incident_id]
        outbox.enqueue(
            session,
            workspace_id=alert.workspace_id,
            kind=outbox.CHASE,
            channel=person.slack_user_id,
            alert_id=alert.id,
            incident_id=alert.incident_id,
            payload=messages.chase(
                number=number,
                author_slack_id=author_slack,
                categories=categories.get(alert.incident_id, []),
                url=messages.incident_url(public_url, number),
            ),
            now=now,
        )
    await session.flush()
    log.info("unread.chased", alerts=len(due))
    return len(due)


@dataclass(frozen=True)
class UnopenedRow:
    """A chased alert still unopened, as the DSLs see it listed: number and whose alert."""

    alert_id: int
    incident_id: int
    number: int
    recipient_name: str
    recipient_slack_id: str | None
    created_at: dt.datetime
    chased_at: dt.datetime


async def chased_unopened(
    session: AsyncSession, *, workspace_id: int, limit: int = 50
) -> list[UnopenedRow]:
    """Alerts reminded once and still not opened, oldest first (for key-holders only:
    the callers ask `store.access.is_keyholder`)."""
    rows = await session.execute(
        select(
            Alert.id,
            Incident.id,
            Incident.number,
            Staff.name,
            Staff.slack_user_id,
            Alert.created_at,
            Alert.chased_at,
        )
        .join(Incident, Incident.id == Alert.incident_id)
        .join(Staff, Staff.id == Alert.recipient_id)
        .where(
            Alert.workspace_id == workspace_id,
            Alert.chased_at.is_not(None),
            Alert.opened_at.is_(None),
            Alert.withdrawn_at.is_(None),
            Staff.active.is_(True),
        )
        .order_by(Alert.created_at, Alert.id)
        .limit(limit)
    )
    return [
        UnopenedRow(
            alert_id, incident_id, number, name, slack_id, created_at, chased_at or created_at
        )
        for alert_id, incident_id, number, name, slack_id, created_at, chased_at in rows
    ]
