"""What the database holds, read the way the tests check it; and an action written through
`store.actions` where a test needs one without the web form."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import actions, pupils, workspaces
from store.crypto import Cipher
from store.models import AuditEvent, Incident, IncidentAction, Pupil, PupilDetails, Staff
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
        found = await pupil_with_upn(school, db, upn)
    assert found is not None, upn
    return found


async def pupil_with_upn(school: Harness, db: AsyncSession, upn: str) -> Pupil | None:
    """The school's pupil with this UPN, read in `db` (UPNs are stored as keyed hashes)."""
    return await pupils.by_upn(
        db, workspace_id=school.workspace_id, cipher=school.server.cipher, upn=upn
    )


async def pupil_at_another_school(
    db: AsyncSession,
    *,
    team_id: str = OTHER_TEAM_ID,
    upn: str = "Y00000000001A",
    cipher: Cipher,
) -> Pupil:
    """Quenby Outsider, a pupil of another school on the same deployment (added to `db`,
    not committed)."""
    other = await workspaces.ensure(db, team_id=team_id, name="Another School")
    await db.flush()
    return await pupils.new_pupil(
        db,
        cipher=cipher,
        workspace_id=other.id,
        details=PupilDetails(
            upn=upn,
            forename="Quenby",
            surname="Outsider",
            preferred_name=None,
            date_of_birth=dt.date(2017, 1, 1),
        ),
        year_group="3",
        registration_group="3A",
    )


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


async def set_date_of_birth(school: Harness, upn: str, born: dt.date) -> None:
    """Give the pupil with this UPN another date of birth (sealed again, like the import
    does, and the roster marked changed)."""
    async with school.server.factory() as db, db.begin():
        pupil = await pupil_with_upn(school, db, upn)
        assert pupil is not None, upn
        details = dataclasses.replace(pupil.details, date_of_birth=born)
        pupil.details_ct = pupils.seal_details(school.server.cipher, pupil.id, details)
        await pupils.roster_changed(db, workspace_id=pupil.workspace_id)
