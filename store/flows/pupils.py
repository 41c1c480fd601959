"""The safeguarding team's pupil pages: the pupil search and a pupil's chronology.

Both are audited: the search by how many were found (the words typed may be a name), the
chronology by the pupil's id, the range and the categories asked for (never a name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, chronology, workspaces
from store.flows import Visit
from store.pupils import PupilRow, find_pupils


async def search_pupils(session: AsyncSession, *, visit: Visit, query: str) -> list[PupilRow]:
    """Pupils found by name or UPN, audited by how many were found."""
    rows = await find_pupils(
        session, workspace_id=visit.staff.workspace_id, query=query, viewer=visit.staff
    )
    visit.trail(session).add("pupil.search", detail=f"{len(rows)} found")
    return rows


@dataclass(frozen=True)
class ChronologyAsked:
    """Which chronology, filtered how: categories, and a range of times [start, end)."""

    pupil_id: int | None
    categories: Sequence[str]
    start: dt.datetime | None
    end: dt.datetime | None
    range_key: str  # the range as the audit log names it


@dataclass(frozen=True)
class ChronologyView:
    chronology: chronology.Chronology
    school: str  # the school's name, for the heading


def chronology_detail(
    *, pupil_id: int, range_key: str, categories: Sequence[str], known: set[str]
) -> str:
    """What the audit log keeps of a chronology asked for: only category names the school
    uses (a made-up one matches nothing, and is counted instead)."""
    detail = f"pupil {pupil_id}; {range_key}"
    named = [c for c in categories if c in known]
    unknown = len(categories) - len(named)
    if categories:
        detail += "; categories: " + ", ".join(named)
        detail += f" (+{unknown} unknown)" if unknown else ""
    return detail[:200]


async def view_chronology(
    session: AsyncSession, *, visit: Visit, asked: ChronologyAsked, action: str
) -> ChronologyView | None:
    """The pupil's chronology, filtered, audited as `action`; None (refusal audited) when
    there is no such pupil in the viewer's school."""
    pupil_id, categories = asked.pupil_id, asked.categories
    found = (
        await chronology.chronology(
            session,
            workspace_id=visit.staff.workspace_id,
            pupil_id=pupil_id,
            cipher=visit.setup.cipher,
            now=visit.now,
            categories=categories,
            start=asked.start,
            end=asked.end,
            viewer=visit.staff,
        )
        if pupil_id is not None
        else None
    )
    trail = visit.trail(session)
    if found is None:
        detail = f"no pupil {pupil_id} here" if pupil_id else "not a pupil id"
        trail.add(action, audit.REFUSED, detail=detail)
        return None
    known = {c.name for c in visit.setup.catalogue.categories} | set(found.categories_seen)
    detail = chronology_detail(
        pupil_id=found.pupil.id, range_key=asked.range_key, categories=categories, known=known
    )
    trail.add(action, detail=detail)
    school = await workspaces.school_name(session, workspace_id=visit.staff.workspace_id)
    return ChronologyView(found, school)
