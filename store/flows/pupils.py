"""The safeguarding team's pupil pages: the pupil search, a pupil's chronology, and the
key-holder's edit of the pupil's context (CP plan, SEN, social worker...).

Both are audited: the search by how many were found (the words typed may be a name), the
chronology by the pupil's id, the range and the categories asked for (never a name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, chronology, pupil_context, workspaces
from store.flows import Visit
from store.models import PupilContext
from store.pupils import PupilRow, find_pupils, pupil_in_workspace

CONTEXT_ACTION = "pupil.context"


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


# -- a key-holder's edit of the pupil's context ---------------------------------------------


async def edit_context(
    session: AsyncSession, *, visit: Visit, pupil_id: int | None, values: Mapping[str, Any]
) -> list[str] | None:
    """Set the pupil's context (CP plan, SEN, social worker...) as the key-holder gave it,
    each change dated in the pupil's history and the whole audited by the names of the
    flags changed (never a value); None (refusal audited) if no such pupil here."""
    workspace_id = visit.staff.workspace_id
    pupil = (
        await pupil_in_workspace(session, workspace_id=workspace_id, pupil_id=pupil_id)
        if pupil_id is not None
        else None
    )
    trail = visit.trail(session)
    if pupil is None:
        trail.add(CONTEXT_ACTION, audit.REFUSED, detail=f"no pupil {pupil_id} here")
        return None
    stored = await session.get(PupilContext, pupil.id)
    cipher = visit.setup.cipher
    old = (
        await pupil_context.contexts(
            session, workspace_id=workspace_id, pupil_ids=[pupil.id], cipher=cipher
        )
    )[pupil.id]
    changed = await pupil_context.set_context(
        session,
        workspace_id=workspace_id,
        pupil_id=pupil.id,
        row=stored,
        old=old,
        new=pupil_context.merged(old, values),
        cipher=cipher,
        source=pupil_context.WEB,
        at=visit.now,
        actor_id=visit.staff.id,
    )
    detail = f"pupil {pupil.id}; " + (", ".join(changed) if changed else "no change")
    trail.add(CONTEXT_ACTION, detail=detail)
    return changed
