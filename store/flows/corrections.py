"""A key-holder's correction on an incident: "filed against the wrong pupil" (DESIGN §12).

One step: find the incident the key-holder may see (`visible_or_refused`), record the
correction (`store.pupil_corrections.correct`, append-only: the incident keeps the pupil it
was filed with) and audit it, by pupil ids only. The concern then leaves the wrong pupil's
chronology and reports and joins the right one's; both chronologies say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, pupil_corrections, pupils
from store.flows import Visit
from store.flows.incidents import IncidentPage, incident_page, visible_or_refused

log = structlog.get_logger(__name__)

ACTION = "incident.correct_pupil"


@dataclass(frozen=True)
class Corrected:
    incident_id: int
    number: int


@dataclass(frozen=True)
class CorrectionRefused:
    error: str
    page: IncidentPage


async def correct_pupil(
    session: AsyncSession,
    *,
    visit: Visit,
    number: int | None,
    wrong_pupil_id: int | None,
    right_upn: str,
) -> Corrected | CorrectionRefused | None:
    """Record the correction, audited; None (refusal audited) if the incident is not the
    key-holder's to see; the error and the page to show it on if it cannot be recorded."""
    incident = await visible_or_refused(session, visit=visit, number=number, action=ACTION)
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id)
    try:
        correction = await pupil_corrections.correct(
            session,
            incident=incident,
            wrong_pupil_id=wrong_pupil_id,
            right_upn=right_upn[:20],
            upn_key=await pupils.upn_key(
                session, workspace_id=incident.workspace_id, cipher=visit.setup.cipher
            ),
            author=visit.staff,
            at=visit.now,
        )
    except pupil_corrections.InvalidCorrection as error:
        trail.add(ACTION, audit.FAILED, detail=f"invalid: {error}"[:200])
        page = await incident_page(session, incident=incident, visit=visit)
        return CorrectionRefused(str(error), page)
    trail.add(
        ACTION,
        detail=f"pupil {correction.wrong_pupil_id} -> pupil {correction.right_pupil_id}",
    )
    log.info(
        "incident.pupil_corrected",
        staff=visit.staff.id,
        incident=incident.id,
        wrong=correction.wrong_pupil_id,
        right=correction.right_pupil_id,
    )
    return Corrected(incident.id, incident.number)
