"""The audit log: every view, change, sign-in and refusal. Append-only.

`record` adds an entry (`Trail` adds a step's entries, by one actor from one address);
`entries` and `audit_rows` (for the key-holders' audit page) read
them back, newest first.

Entries say who, what, when and from where, never the record's content (no pupil names,
no narrative, no action text). The database refuses to change or delete them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.access import in_view
from store.bulk import table_of
from store.enums import AuditOutcome
from store.models import AuditEvent, Incident, Staff, utcnow
from store.staff import staff_names

OK, REFUSED, FAILED = AuditOutcome.OK, AuditOutcome.REFUSED, AuditOutcome.FAILED


def record(
    session: AsyncSession,
    *,
    action: str,
    outcome: AuditOutcome = OK,
    workspace_id: int | None = None,
    actor: Staff | None = None,
    actor_slack_id: str | None = None,
    incident_id: int | None = None,
    subject_id: int | None = None,
    ip: str | None = None,
    detail: str | None = None,
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Add an entry in the session's transaction."""
    event = AuditEvent(
        **entry(
            action=action,
            outcome=outcome,
            workspace_id=workspace_id,
            actor=actor,
            actor_slack_id=actor_slack_id,
            incident_id=incident_id,
            subject_id=subject_id,
            ip=ip,
            detail=detail,
            now=now,
        )
    )
    session.add(event)
    return event


# An entry's INSERT on the table itself, built once (`write`).
_ENTRY = insert(table_of(AuditEvent))


async def write(session: AsyncSession, **fields: Any) -> None:
    """`record`'s entry (same fields), written at once by one INSERT of the table, with no
    ORM object: for an entry about rows already stored, such as a page's view, where
    flushing an object costs several times the INSERT itself (every view is audited)."""
    await session.execute(_ENTRY, entry(**fields))


def entry(
    *,
    action: str,
    outcome: AuditOutcome = OK,
    workspace_id: int | None = None,
    actor: Staff | None = None,
    actor_slack_id: str | None = None,
    incident_id: int | None = None,
    subject_id: int | None = None,
    ip: str | None = None,
    detail: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """An entry's column values (`record`'s), for a flow that writes its rows in one
    statement."""
    return {
        "workspace_id": workspace_id
        if workspace_id is not None
        else getattr(actor, "workspace_id", None),
        "at": now or utcnow(),
        "actor_id": actor.id if actor else None,
        "actor_slack_id": actor_slack_id or (actor.slack_user_id if actor else None),
        "action": action,
        "outcome": outcome,
        "incident_id": incident_id,
        "subject_id": subject_id,
        "ip": (ip or "")[:64] or None,
        "detail": (detail or "")[:200] or None,
    }


@dataclass(frozen=True)
class Trail:
    """The entries of one step: by one actor, from one address, maybe about one incident.

    `trail.add("incident.view")`; `trail.add("action.add", FAILED, detail="invalid: text")`.
    """

    session: AsyncSession
    actor: Staff | None = None
    ip: str | None = None
    incident_id: int | None = None
    now: dt.datetime | None = None
    workspace_id: int | None = None  # if not the actor's (or there is no actor)
    actor_slack_id: str | None = None  # if not the actor's (or there is no actor)

    def _fields(
        self,
        action: str,
        outcome: AuditOutcome,
        detail: str | None,
        incident_id: int | None,
        subject_id: int | None,
    ) -> dict[str, Any]:
        return {
            "action": action,
            "outcome": outcome,
            "workspace_id": self.workspace_id,
            "actor": self.actor,
            "actor_slack_id": self.actor_slack_id,
            "incident_id": incident_id if incident_id is not None else self.incident_id,
            "subject_id": subject_id,
            "ip": self.ip,
            "detail": detail,
            "now": self.now,
        }

    def add(
        self,
        action: str,
        outcome: AuditOutcome = OK,
        *,
        detail: str | None = None,
        incident_id: int | None = None,
        subject_id: int | None = None,
    ) -> AuditEvent:
        """Add an entry (about `incident_id`, if given, else the trail's incident)."""
        return record(
            self.session, **self._fields(action, outcome, detail, incident_id, subject_id)
        )

    async def write(
        self,
        action: str,
        outcome: AuditOutcome = OK,
        *,
        detail: str | None = None,
        incident_id: int | None = None,
    ) -> None:
        """`add`, written at once (`store.audit.write`): only for an entry about rows
        already stored, such as a page's view."""
        await write(self.session, **self._fields(action, outcome, detail, incident_id, None))


async def entries(
    session: AsyncSession,
    *,
    workspace_id: int,
    actor_id: int | None = None,
    incident_id: int | None = None,
    limit: int = 200,
    before_id: int | None = None,
    viewer: Staff | None = None,
) -> Sequence[AuditEvent]:
    """Newest entries first, filtered by person (as actor or subject) or incident; with a
    `viewer`, none about an incident they may not see (`store.access`)."""
    query = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
    if viewer is not None:
        query = query.where(
            or_(AuditEvent.incident_id.is_(None), in_view(AuditEvent.incident_id, viewer))
        )
    if actor_id is not None:
        query = query.where((AuditEvent.actor_id == actor_id) | (AuditEvent.subject_id == actor_id))
    if incident_id is not None:
        query = query.where(AuditEvent.incident_id == incident_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return (await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))).all()


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
    viewer: Staff | None = None,
) -> list[AuditRow]:
    """The audit log, newest first, with people's names and incident numbers (only rows
    `viewer` may see, with a viewer)."""
    events = await entries(
        session,
        workspace_id=workspace_id,
        actor_id=person_id,
        incident_id=incident_id,
        before_id=before_id,
        limit=limit,
        viewer=viewer,
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
