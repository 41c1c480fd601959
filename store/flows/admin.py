"""The key-holders' administration: reading the audit log, resetting an authenticator,
unlocking a sign-in locked after too many wrong codes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import access, audit, totp
from store.audit import AuditRow
from store.flows import Visit
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
    visit: Visit,
    person: int | None,
    number: int | None,
    before: int | None,
    limit: int,
) -> AuditLogPage:
    """The audit log, newest first, filtered by person and incident; its reading audited."""
    viewer = visit.staff
    incident_id = None
    unknown_incident = False
    if number is not None:
        # An incident the viewer may not see is as unknown as one that does not exist.
        visible = await access.visible_incident(session, viewer=viewer, number=number)
        incident_id = visible.id if visible is not None else None
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
            viewer=viewer,
        )
    )
    people = await staff_in_workspace(session, workspace_id=viewer.workspace_id, active_only=False)
    filters = " ".join(
        f"{name}={value}"
        for name, value in (("person", person), ("incident", number), ("before", before))
        if value is not None
    )
    visit.trail(session, incident_id=incident_id).add(
        "audit.view",
        subject_id=person if person in {p.id for p in people} else None,
        detail=filters or None,
    )
    return AuditLogPage(rows, people, unknown_incident)


async def reset_totp(session: AsyncSession, *, visit: Visit, staff_id: int | None) -> Staff | None:
    """Remove a colleague's authenticator and end their sessions, audited; None (refusal
    audited) if they are not staff of the visitor's school."""
    target = (
        await get_staff(session, workspace_id=visit.staff.workspace_id, staff_id=staff_id)
        if staff_id is not None
        else None
    )
    trail = visit.trail(session)
    if target is None:
        detail = f"no staff {staff_id} here" if staff_id else "not a staff id"
        trail.add("totp.reset", audit.REFUSED, detail=detail)
        return None
    removed = await totp.reset(session, staff_id=target.id)
    note = None if removed else "had no authenticator"
    trail.add("totp.reset", subject_id=target.id, detail=note)
    return target


async def unlock_totp(session: AsyncSession, *, visit: Visit, staff_id: int | None) -> Staff | None:
    """Lift a colleague's sign-in lockout (too many wrong codes), audited; None (refusal
    audited) if they are not staff of the visitor's school."""
    target = (
        await get_staff(session, workspace_id=visit.staff.workspace_id, staff_id=staff_id)
        if staff_id is not None
        else None
    )
    if target is None:
        detail = f"no staff {staff_id} here" if staff_id else "not a staff id"
        visit.trail(session).add("totp.unlock", audit.REFUSED, detail=detail)
        return None
    unlocked = await totp.unlock(
        session, staff_id=target.id, by=visit.staff, ip=visit.ip, now=visit.now
    )
    if not unlocked:
        visit.trail(session).add("totp.unlock", subject_id=target.id, detail="was not locked")
    return target
