"""The key-holders' administration: reading the audit log, resetting an authenticator."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, incidents, totp
from store.audit import AuditRow
from store.models import Staff
from store.staff import get_staff, staff_in_workspace


@dataclass(frozen=True)
class AuditLogPage:
    rows: list[AuditRow]
    people: list[Staff]  # everyone, to filter by
    unknown_incident: bool  # the incident asked for does not exist


async def view_audit_log(
    session: AsyncSession,
    *,
    viewer: Staff,
    person: int | None,
    number: int | None,
    before: int | None,
    limit: int,
    ip: str | None,
) -> AuditLogPage:
    """The audit log, newest first, filtered by person and incident; its reading audited."""
    incident_id = None
    unknown_incident = False
    if number is not None:
        incident_id = await incidents.incident_id_by_number(
            session, workspace_id=viewer.workspace_id, number=number
        )
        unknown_incident = incident_id is None
    rows = (
        []
        if unknown_incident
        else await audit.audit_rows(
            session,
            workspace_id=viewer.workspace_id,
            person_id=person,
            incident_id=incident_id,
            before_id=before,
            limit=limit,
        )
    )
    people = await staff_in_workspace(session, workspace_id=viewer.workspace_id, active_only=False)
    filters = " ".join(
        f"{name}={value}"
        for name, value in (("person", person), ("incident", number), ("before", before))
        if value is not None
    )
    audit.record(
        session,
        action="audit.view",
        actor=viewer,
        incident_id=incident_id,
        subject_id=person if person in {p.id for p in people} else None,
        ip=ip,
        detail=filters or None,
    )
    return AuditLogPage(rows, people, unknown_incident)


async def reset_totp(
    session: AsyncSession, *, viewer: Staff, staff_id: int | None, ip: str | None
) -> Staff | None:
    """Remove a colleague's authenticator and end their sessions, audited; None (refusal
    audited) if they are not staff of the viewer's school."""
    target = (
        await get_staff(session, workspace_id=viewer.workspace_id, staff_id=staff_id)
        if staff_id is not None
        else None
    )
    if target is None:
        audit.record(
            session,
            action="totp.reset",
            outcome=audit.REFUSED,
            actor=viewer,
            ip=ip,
            detail=f"no staff {staff_id} here" if staff_id else "not a staff id",
        )
        return None
    removed = await totp.reset(session, staff_id=target.id)
    audit.record(
        session,
        action="totp.reset",
        actor=viewer,
        subject_id=target.id,
        ip=ip,
        detail=None if removed else "had no authenticator",
    )
    return target
