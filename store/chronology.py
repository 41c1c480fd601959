"""A pupil's chronology (DESIGN §4, §7, §12): every incident that names the pupil, as the
main or a linked pupil (after any "filed against the wrong pupil" correction,
`store.pupil_corrections`), every action and agency referral on those incidents, the
changes to the pupil's context (`store.pupil_context`), in time order.

For the safeguarding team only (the page checks): this is the one place outside the
incident page where narratives and action text are decrypted, for the chronology page
and its PDF. Other pupils named on an incident are counted, never named, so a printed
chronology taken to a case conference is about one child.

Entry point (also used by the benchmark): `chronology`. Finding the pupil is
`store.pupils.find_pupils`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store import pupil_context, pupil_corrections
from store.access import in_view
from store.crypto import Cipher, bind
from store.documents.bodymap import BodyMapView, body_maps_of_incidents
from store.documents.files import FileView, incidents_files, paper_records_of
from store.models import (
    CaseStatusChange,
    Incident,
    IncidentAction,
    IncidentCategory,
    IncidentPupil,
    Pupil,
    Referral,
    Staff,
)
from store.pupils import pupil_in_workspace
from store.referrals import AWAITING


class EntryKind(StrEnum):
    """What a line of a chronology records.

    Entries at the same instant come in this order: the incident first, then what
    followed from it.
    """

    INCIDENT = "incident"
    ACTION = "action"
    REFERRAL = "referral"
    RESPONSE = "response"  # the agency responded
    CLOSED = "closed"  # the referral was closed
    CONTEXT = "context"  # the pupil's context changed (CP plan, SEN...), or they left
    MOVED = "moved"  # a concern moved to or away from the pupil (filed against the wrong one)
    FILE = "file"  # a file attached to the incident
    PAPER = "paper"  # a historic record imported from the paper files
    BODY_MAP = "bodymap"  # a body map drawn on the incident


INCIDENT, ACTION, REFERRAL, RESPONSE, CLOSED, CONTEXT, MOVED, FILE, PAPER, BODY_MAP = EntryKind
_ORDER = {kind: position for position, kind in enumerate(EntryKind)}


# -- the chronology -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One line of a chronology. `text` is decrypted; only the chronology shows it."""

    kind: EntryKind
    at: dt.datetime
    number: int  # the incident's number (0 for a context change)
    incident_id: int
    sort_id: int
    who: str | None = None  # who recorded it
    text: str = ""
    categories: list[str] = field(default_factory=list)  # incident: current; action: new
    original_categories: list[str] = field(default_factory=list)  # incident, if changed
    main: bool = True  # incident: this pupil is its main pupil (else linked)
    others: int = 0  # incident: other pupils named on it
    parents: str = ""  # incident: were parents or carers contacted (yes/no)
    parents_reason: str = ""
    recorded_at: dt.datetime | None = None  # incident: when it was written down
    agency: str = ""  # referral entries
    reference: str | None = None
    due_at: dt.datetime | None = None
    overdue: bool = False
    files: list[FileView] = field(default_factory=list)  # a file entry's file; a paper record's
    on: dt.date | None = None  # a paper record: its original date (no time of day)
    body_map: BodyMapView | None = None  # a body map entry's marks
    away: bool = False  # moved: away from this pupil (else to them)
    case_status: str | None = None  # action: the status it set (open, monitoring, closed)
    case_outcome: str | None = None  # action: the outcome a close named

    @property
    def recategorised(self) -> bool:
        return bool(self.original_categories) and self.original_categories != self.categories


@dataclass(frozen=True)
class Chronology:
    pupil: Pupil
    entries: list[Entry]
    incidents: int  # incidents shown
    categories_seen: list[str]  # every category on the pupil's incidents, for the filter
    context: pupil_context.Context = pupil_context.NOTHING  # now, decrypted


async def chronology(
    session: AsyncSession,
    *,
    workspace_id: int,
    pupil_id: int,
    cipher: Cipher,
    now: dt.datetime,
    categories: Collection[str] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    viewer: Staff | None = None,
) -> Chronology | None:
    """The pupil's chronology, oldest first; None if no such pupil in this workspace.

    `categories` keeps the incidents that have (or were filed with) any of them, with
    their actions and referrals; `start` (inclusive) and `end` (exclusive) keep the
    entries whose own time falls between them; the pupil's context changes and the concerns
    moved to or from them by a correction come only when no category is asked for. Only
    the incidents `viewer` may see are in it (`store.access`). Ten queries whatever the
    history, and three more for its files, body maps and paper records (a fourth for
    the records' scans).
    """
    pupil = await pupil_in_workspace(session, workspace_id=workspace_id, pupil_id=pupil_id)
    if pupil is None:
        return None
    author = aliased(Staff)
    # The concerns naming the pupil now (as filed, or moved to them by a correction) that
    # `viewer` may see.
    named = pupil_corrections.naming([pupil_id])
    mine = select(named).where(in_view(named.c.incident_id, viewer)).subquery()
    incidents = (
        await session.execute(
            select(
                Incident.id,
                Incident.number,
                Incident.happened_at,
                Incident.created_at,
                Incident.narrative_ct,
                Incident.parents_contacted,
                Incident.parents_reason_ct,
                author.name,
                mine.c.is_main,
            )
            .join(mine, mine.c.incident_id == Incident.id)
            .join(author, author.id == Incident.author_id)
            .where(Incident.workspace_id == workspace_id)
        )
    ).all()
    ids = [row.id for row in incidents]
    original: dict[int, list[str]] = {}
    pupils_on: dict[int, int] = {}
    actions: list[
        Row[int, int, dt.datetime, bytes, list[str] | None, str, str | None, str | None]
    ] = []
    referrals: list[Row[Referral, str]] = []
    if ids:
        for incident_id, name in await session.execute(
            select(IncidentCategory.incident_id, IncidentCategory.name)
            .join(mine, mine.c.incident_id == IncidentCategory.incident_id)
            .order_by(IncidentCategory.incident_id, IncidentCategory.position)
        ):
            original.setdefault(incident_id, []).append(name)
        pupils_on = dict(
            (
                await session.execute(
                    select(IncidentPupil.incident_id, func.count())
                    .join(mine, mine.c.incident_id == IncidentPupil.incident_id)
                    .group_by(IncidentPupil.incident_id)
                )
            ).all()
        )
        actions = list(
            (
                await session.execute(
                    select(
                        IncidentAction.id,
                        IncidentAction.incident_id,
                        IncidentAction.created_at,
                        IncidentAction.text_ct,
                        IncidentAction.categories,
                        author.name,
                        CaseStatusChange.status,
                        CaseStatusChange.outcome,
                    )
                    .join(mine, mine.c.incident_id == IncidentAction.incident_id)
                    .join(author, author.id == IncidentAction.author_id)
                    .outerjoin(CaseStatusChange, CaseStatusChange.action_id == IncidentAction.id)
                    .order_by(IncidentAction.created_at, IncidentAction.id)
                )
            ).all()
        )
        referrals = list(
            (
                await session.execute(
                    select(Referral, author.name)
                    .join(mine, mine.c.incident_id == Referral.incident_id)
                    .join(author, author.id == Referral.created_by_id)
                    .order_by(Referral.referred_at, Referral.id)
                )
            ).all()
        )

    # Each incident's categories now: its latest re-categorisation, else as filed.
    current = {i: list(c) for i, c in original.items()}
    for row in actions:
        if row.categories:
            current[row.incident_id] = list(row.categories)
    seen = sorted(
        {c for cs in original.values() for c in cs} | {c for cs in current.values() for c in cs},
        key=str.casefold,
    )
    wanted = set(categories)
    kept = {
        i
        for i in ids
        if not wanted or wanted & (set(original.get(i, [])) | set(current.get(i, [])))
    }

    def in_range(at: dt.datetime) -> bool:
        return (start is None or at >= start) and (end is None or at < end)

    numbers = {row.id: row.number for row in incidents}
    entries: list[Entry] = []
    for row in incidents:
        if row.id not in kept or not in_range(row.happened_at):
            continue
        now_categories = current.get(row.id, [])
        entries.append(
            Entry(
                kind=INCIDENT,
                at=row.happened_at,
                number=row.number,
                incident_id=row.id,
                sort_id=row.id,
                who=row.name,
                text=cipher.decrypt(row.narrative_ct, bind(Incident.narrative_ct, row.id)),
                categories=now_categories,
                original_categories=original.get(row.id, []),
                main=bool(row.is_main),
                others=max(0, pupils_on.get(row.id, 1) - 1),
                parents=row.parents_contacted,
                parents_reason=(
                    cipher.decrypt(row.parents_reason_ct, bind(Incident.parents_reason_ct, row.id))
                    if row.parents_reason_ct
                    else ""
                ),
                recorded_at=row.created_at,
            )
        )
    for row in actions:
        if row.incident_id not in kept or not in_range(row.created_at):
            continue
        entries.append(
            Entry(
                kind=ACTION,
                at=row.created_at,
                number=numbers[row.incident_id],
                incident_id=row.incident_id,
                sort_id=row.id,
                who=row.name,
                text=cipher.decrypt(row.text_ct, bind(IncidentAction.text_ct, row.id)),
                categories=list(row.categories or []),
                case_status=row.status,
                case_outcome=row.outcome,
            )
        )
    for referral, name in referrals:
        if referral.incident_id not in kept:
            continue
        facts = {
            "number": numbers[referral.incident_id],
            "incident_id": referral.incident_id,
            "sort_id": referral.id,
            "agency": referral.agency,
            "reference": referral.reference,
        }
        if in_range(referral.referred_at):
            entries.append(
                Entry(
                    kind=REFERRAL,
                    at=referral.referred_at,
                    who=name,
                    due_at=referral.due_at,
                    overdue=referral.status == AWAITING and referral.due_at <= now,
                    **facts,
                )
            )
        if referral.responded_at is not None and in_range(referral.responded_at):
            entries.append(Entry(kind=RESPONSE, at=referral.responded_at, **facts))
        if referral.closed_at is not None and in_range(referral.closed_at):
            entries.append(Entry(kind=CLOSED, at=referral.closed_at, **facts))
    if not wanted:  # the pupil's own history is about no category
        for change in await pupil_context.history(session, pupil_id=pupil_id, cipher=cipher):
            if in_range(change.at):
                entries.append(
                    Entry(
                        kind=CONTEXT,
                        at=change.at,
                        number=0,
                        incident_id=0,
                        sort_id=change.id,
                        who=change.who,
                        text=change.text,
                    )
                )
        for move in await pupil_corrections.moves(session, pupil_id=pupil_id):
            if in_range(move.at):
                entries.append(
                    Entry(
                        kind=MOVED,
                        at=move.at,
                        number=move.number,
                        incident_id=move.incident_id,
                        sort_id=move.id,
                        who=move.who,
                        away=move.away,
                    )
                )
    for view in await incidents_files(session, incident_ids=sorted(kept), cipher=cipher):
        if in_range(view.created_at) and view.incident_id is not None:
            entries.append(
                Entry(
                    kind=FILE,
                    at=view.created_at,
                    number=numbers[view.incident_id],
                    incident_id=view.incident_id,
                    sort_id=view.id,
                    who=view.uploaded_by,
                    text=view.name,
                    files=[view],
                )
            )
    for incident_id, drawn in await body_maps_of_incidents(
        session, incident_ids=sorted(kept), cipher=cipher
    ):
        if in_range(drawn.created_at):
            entries.append(
                Entry(
                    kind=BODY_MAP,
                    at=drawn.created_at,
                    number=numbers[incident_id],
                    incident_id=incident_id,
                    sort_id=drawn.id,
                    who=drawn.author,
                    body_map=drawn,
                )
            )
    if not wanted:  # paper records have no categories: a category filter leaves them out
        for paper in await paper_records_of(session, pupil_id=pupil.id, cipher=cipher):
            at = dt.datetime.combine(paper.on, dt.time(), tzinfo=dt.UTC)
            if in_range(at):
                entries.append(
                    Entry(
                        kind=PAPER,
                        at=at,
                        number=0,
                        incident_id=0,
                        sort_id=paper.id,
                        who=paper.added_by,
                        text=paper.description,
                        recorded_at=paper.created_at,
                        files=paper.files,
                        on=paper.on,
                    )
                )
    entries.sort(key=lambda e: (e.at, _ORDER[e.kind], e.sort_id))
    now_context = await pupil_context.contexts(
        session, workspace_id=workspace_id, pupil_ids=[pupil_id], cipher=cipher
    )
    return Chronology(
        pupil=pupil,
        entries=entries,
        incidents=sum(1 for e in entries if e.kind == INCIDENT),
        categories_seen=seen,
        context=now_context[pupil_id],
    )
