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
from store.catalogue import Catalogue
from store.crypto import Cipher
from store.models import Staff
from store.pupils import PupilRow, find_pupils


async def search_pupils(
    session: AsyncSession, *, viewer: Staff, query: str, ip: str | None
) -> list[PupilRow]:
    """Pupils found by name or UPN, audited by how many were found."""
    rows = await find_pupils(session, workspace_id=viewer.workspace_id, query=query)
    audit.record(session, action="pupil.search", actor=viewer, ip=ip, detail=f"{len(rows)} found")
    return rows


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
    session: AsyncSession,
    *,
    viewer: Staff,
    pupil_id: int | None,
    categories: Sequence[str],
    start: dt.datetime | None,
    end: dt.datetime | None,
    range_key: str,
    catalogue: Catalogue,
    cipher: Cipher,
    action: str,
    ip: str | None,
    now: dt.datetime,
) -> ChronologyView | None:
    """The pupil's chronology, filtered, audited as `action`; None (refusal audited) when
    there is no such pupil in the viewer's school."""
    found = (
        await chronology.chronology(
            session,
            workspace_id=viewer.workspace_id,
            pupil_id=pupil_id,
            cipher=cipher,
            now=now,
            categories=categories,
            start=start,
            end=end,
        )
        if pupil_id is not None
        else None
    )
    if found is None:
        audit.record(
            session,
            action=action,
            outcome=audit.REFUSED,
            actor=viewer,
            ip=ip,
            detail=f"no pupil {pupil_id} here" if pupil_id else "not a pupil id",
        )
        return None
    known = {c.name for c in catalogue.categories} | set(found.categories_seen)
    audit.record(
        session,
        action=action,
        actor=viewer,
        ip=ip,
        detail=chronology_detail(
            pupil_id=found.pupil.id, range_key=range_key, categories=categories, known=known
        ),
    )
    school = await workspaces.school_name(session, workspace_id=viewer.workspace_id)
    return ChronologyView(found, school)
