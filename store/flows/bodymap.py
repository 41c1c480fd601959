"""Body maps on an incident: adding one (anyone who may see the concern), audited by
its number of marks, never what they say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.documents import bodymap
from store.documents.bodymap import InvalidBodyMap
from store.flows import Visit
from store.flows.incidents import visible_or_refused
from store.models import Incident

ADD = "bodymap.add"


async def may_draw(session: AsyncSession, *, visit: Visit, number: int | None) -> Incident | None:
    """The incident, if the visitor may add a body map to it (refusal audited)."""
    return await visible_or_refused(session, visit=visit, number=number, action="bodymap.view")


@dataclass(frozen=True)
class Drawn:
    number: int
    body_map_id: int


@dataclass(frozen=True)
class DrawRefused:
    errors: dict[str, str]
    number: int


async def add_body_map(
    session: AsyncSession,
    *,
    visit: Visit,
    number: int | None,
    rows: list[Mapping[str, str]],
) -> Drawn | DrawRefused | None:
    """Store the body map drawn on the form; None (audited) if not theirs to see."""
    incident = await visible_or_refused(session, visit=visit, number=number, action=ADD)
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id)
    try:
        marks = bodymap.parse_marks(rows)
    except InvalidBodyMap as invalid:
        trail.add(ADD, audit.FAILED, detail="invalid: " + ", ".join(sorted(invalid.errors))[:180])
        return DrawRefused(invalid.errors, incident.number)
    row = await bodymap.add(
        session,
        cipher=visit.setup.cipher,
        incident_id=incident.id,
        workspace_id=incident.workspace_id,
        author_id=visit.staff.id,
        marks=marks,
    )
    await session.flush()
    trail.add(ADD, detail=f"body map {row.id}; {len(marks)} marks")
    return Drawn(incident.number, row.id)
