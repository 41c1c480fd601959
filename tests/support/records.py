"""What the database holds, read the way the tests check it; and an action written through
`store.actions` where a test needs one without the web form."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import actions, workspaces
from store.models import AuditEvent, Incident, IncidentAction, Pupil, Staff
from testing.harness import Harness

from .school import OTHER_TEAM_ID


async def audit_events(school: Harness, action: str) -> list[AuditEvent]:
    """The audit trail's rows for `action`, oldest first."""
    async with school.server.factory() as db:
        return list(
            (
                await db.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            ).all()
        )


async def staff_member(school: Harness, slack_id: str) -> Staff:
    """The roster's row for the person with this Slack id."""
    async with school.server.factory() as db:
        staff = await db.scalar(select(Staff).where(Staff.slack_user_id == slack_id))
    assert staff is not None, slack_id
    return staff


async def pupil_by_upn(school: Harness, upn: str) -> Pupil:
    """The roster's row for the pupil with this UPN."""
    async with school.server.factory() as db:
        found = await db.scalar(select(Pupil).where(Pupil.upn == upn))
    assert found is not None, upn
    return found


async def pupil_at_another_school(
    db: AsyncSession,
    *,
    team_id: str = OTHER_TEAM_ID,
    upn: str = "Y00000000001A",
    search_text: str | None = None,
) -> Pupil:
    """Quenby Outsider, a pupil of another school on the same deployment (added to `db`,
    not committed). `search_text` defaults to her name and UPN, as the importer folds them."""
    other = await workspaces.ensure(db, team_id=team_id, name="Another School")
    stranger = Pupil(
        workspace_id=other.id,
        upn=upn,
        forename="Quenby",
        surname="Outsider",
        date_of_birth=dt.date(2017, 1, 1),
        year_group="3",
        registration_group="3A",
        search_text=search_text or f" quenby outsider {upn.lower()} ",
    )
    db.add(stranger)
    return stranger


async def add_action(
    school: Harness, db: AsyncSession, *, author: Staff, incident: Incident, text: str
) -> IncidentAction:
    """`author`'s action on `incident`, added in `db` by the store call the web form uses."""
    return await actions.add_action(
        db,
        author=author,
        incident=incident,
        text=text,
        catalogue=school.server.catalogue,
        cipher=school.server.cipher,
        public_url=school.settings.public_url,
        now=school.now(),
    )
