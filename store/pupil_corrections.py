"""Concerns filed against the wrong pupil (DESIGN §12): a key-holder's correction.

The incident keeps the pupils it was filed with (`incident_pupils` is immutable); a
correction is an append-only row of `incident_pupil_corrections`. The latest correction
of an `incident_pupils` row says whom it names now: the concern leaves the wrong pupil's
chronology and reports and joins the right one's. Everything that asks "which concerns
name this pupil" asks `naming`; "which pupils does this concern name" asks `pupils_of`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Subquery, and_, exists, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store.models import Incident, IncidentPupil, IncidentPupilCorrection, Pupil, Staff
from store.textsearch import upn_hash

C = IncidentPupilCorrection


def _latest(correction: type[C]) -> ColumnElement[bool]:
    """The correction is the latest of its `incident_pupils` row."""
    later = aliased(C)
    return ~exists(
        select(later.id).where(
            later.incident_id == correction.incident_id,
            later.original_pupil_id == correction.original_pupil_id,
            later.id > correction.id,
        )
    )


def naming(pupil_ids: Collection[int]) -> Subquery:
    """(incident_id, pupil_id, is_main) for every concern naming these pupils now: as
    filed and not corrected away, or corrected to them."""
    wanted = list(pupil_ids)
    as_filed = select(
        IncidentPupil.incident_id, IncidentPupil.pupil_id, IncidentPupil.is_main
    ).where(
        IncidentPupil.pupil_id.in_(wanted),
        ~exists(
            select(C.id).where(
                C.incident_id == IncidentPupil.incident_id,
                C.original_pupil_id == IncidentPupil.pupil_id,
            )
        ),
    )
    corrected = (
        select(C.incident_id, C.right_pupil_id.label("pupil_id"), IncidentPupil.is_main)
        .join(
            IncidentPupil,
            and_(
                IncidentPupil.incident_id == C.incident_id,
                IncidentPupil.pupil_id == C.original_pupil_id,
            ),
        )
        .where(C.right_pupil_id.in_(wanted), _latest(C))
    )
    return union_all(as_filed, corrected).subquery()


def main_pupils() -> Subquery:
    """(incident_id, pupil_id) of every concern's main pupil now (for reports)."""
    latest = aliased(C)
    from_correction = (
        select(latest.right_pupil_id)
        .where(
            latest.incident_id == IncidentPupil.incident_id,
            latest.original_pupil_id == IncidentPupil.pupil_id,
            _latest(latest),
        )
        .scalar_subquery()
    )
    return (
        select(
            IncidentPupil.incident_id,
            func.coalesce(from_correction, IncidentPupil.pupil_id).label("pupil_id"),
        )
        .where(IncidentPupil.is_main.is_(True))
        .subquery()
    )


async def pupils_of(
    session: AsyncSession, *, incident: Incident, corrected: bool = True
) -> list[tuple[Pupil, bool]]:
    """The pupils the concern names now, in filed order, each with whether they are main.
    `corrected=False`: the caller has just read that it has no correction (`notes`)."""
    corrections = (
        list(await session.scalars(select(C).where(C.incident_id == incident.id).order_by(C.id)))
        if corrected
        else []
    )
    now = {c.original_pupil_id: c.right_pupil_id for c in corrections}
    wanted = [now[p.pupil_id] for p in incident.pupils if p.pupil_id in now]
    found = (
        {p.id: p for p in await session.scalars(select(Pupil).where(Pupil.id.in_(wanted)))}
        if wanted
        else {}
    )
    return [
        (found[now[p.pupil_id]] if p.pupil_id in now else p.pupil, p.is_main)
        for p in incident.pupils
    ]


@dataclass(frozen=True)
class Moved:
    """A correction as a pupil's chronology tells it."""

    id: int
    at: dt.datetime
    number: int  # the concern's number
    incident_id: int
    who: str  # the key-holder who corrected it
    away: bool  # True: moved away from this pupil; False: moved to them


async def moves(session: AsyncSession, *, pupil_id: int) -> list[Moved]:
    """Every correction that moved a concern away from or to the pupil, oldest first."""
    rows = await session.execute(
        select(C, Incident.number, Staff.name)
        .join(Incident, Incident.id == C.incident_id)
        .join(Staff, Staff.id == C.author_id)
        .where((C.wrong_pupil_id == pupil_id) | (C.right_pupil_id == pupil_id))
        .order_by(C.created_at, C.id)
    )
    return [
        Moved(c.id, c.created_at, number, c.incident_id, name, c.wrong_pupil_id == pupil_id)
        for c, number, name in rows
    ]


class InvalidCorrection(Exception):
    """Why a correction cannot be recorded (for the form)."""


async def correct(
    session: AsyncSession,
    *,
    incident: Incident,
    wrong_pupil_id: int | None,
    right_upn: str,
    upn_key: bytes,
    author: Staff,
    at: dt.datetime,
) -> IncidentPupilCorrection:
    """Record that the concern was filed against `wrong_pupil_id` and is about the pupil
    with UPN `right_upn`; InvalidCorrection if not possible."""
    current = await pupils_of(session, incident=incident)
    now_ids = [p.id for p, _main in current]
    if wrong_pupil_id is None or wrong_pupil_id not in now_ids:
        raise InvalidCorrection("Choose a pupil this concern names now.")
    right = await session.scalar(
        select(Pupil).where(
            Pupil.workspace_id == incident.workspace_id,
            Pupil.upn_hash == upn_hash(upn_key, right_upn),
        )
    )
    if right is None:
        raise InvalidCorrection("No pupil on the roster has that UPN.")
    if right.id in now_ids:
        raise InvalidCorrection("That pupil is already on this concern.")
    filed = [p.pupil_id for p in incident.pupils]
    original = filed[now_ids.index(wrong_pupil_id)]
    correction = C(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        original_pupil_id=original,
        wrong_pupil_id=wrong_pupil_id,
        right_pupil_id=right.id,
        author_id=author.id,
        created_at=at,
    )
    session.add(correction)
    await session.flush()
    return correction


@dataclass(frozen=True)
class Note:
    """A correction as the concern's page shows it."""

    at: dt.datetime
    who: str
    wrong: Pupil
    right: Pupil


_WRONG, _RIGHT = aliased(Pupil), aliased(Pupil)  # made once: the statement compiles once


async def notes(session: AsyncSession, *, incident_id: int) -> list[Note]:
    """The concern's corrections, oldest first, with both pupils (for its page)."""
    wrong, right = _WRONG, _RIGHT
    rows = await session.execute(
        select(C.created_at, Staff.name, wrong, right)
        .join(Staff, Staff.id == C.author_id)
        .join(wrong, wrong.id == C.wrong_pupil_id)
        .join(right, right.id == C.right_pupil_id)
        .where(C.incident_id == incident_id)
        .order_by(C.id)
    )
    return [Note(at, name, w, r) for at, name, w, r in rows]
