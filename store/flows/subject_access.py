"""A key-holder's subject access requests (`store.subject_access`): open one for a pupil,
review the pack's redactions (remove a proposal, add a phrase), export it, mark it done.

Key-holders only (`store.access.is_keyholder`), in their own school: anyone else, or a
request of another school, is refused as "not here", audited. Every step is audited by
the request's number, the pupil's id and the redaction's number, never a name or phrase.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, keyring, subject_access, workspaces
from store.access import is_keyholder
from store.flows import Visit
from store.models import SarRedaction, SubjectAccessRequest
from store.pupils import pupil_in_workspace, roster_names
from store.subject_access import ADDED, Pack, Redaction, Snippet

OPEN, VIEW, REMOVE, ADD, EXPORT, COMPLETE, LIST = (
    "sar.open",
    "sar.view",
    "sar.redaction_remove",
    "sar.redaction_add",
    "sar.export",
    "sar.complete",
    "sar.list",
)
REQUESTER_MAX = 200


@dataclass(frozen=True)
class Opened:
    """The request opened, or None with the errors by field."""

    request: SubjectAccessRequest | None
    errors: dict[str, str]


async def open_request(
    session: AsyncSession,
    *,
    visit: Visit,
    pupil_id: int | None,
    received_on: dt.date | None,
    requester: str,
    redact_staff: bool,
) -> Opened | None:
    """Open a request for the pupil, received on `received_on` from `requester` (stored
    encrypted); None (refusal audited) if no such pupil here or the visitor holds no key."""
    trail = visit.trail(session)
    staff = visit.staff
    pupil = (
        await pupil_in_workspace(session, workspace_id=staff.workspace_id, pupil_id=pupil_id)
        if pupil_id is not None and is_keyholder(staff.role_set)
        else None
    )
    if pupil is None:
        trail.add(OPEN, audit.REFUSED, detail=f"no pupil {pupil_id} here")
        return None
    working = visit.setup.school.working_time
    today = working.working_day_of(visit.now)
    requester = subject_access.clean_phrase(requester, limit=REQUESTER_MAX)
    errors = {}
    if received_on is None:
        errors["received_on"] = "Give the date the request was received."
    elif received_on > today:
        errors["received_on"] = "The date received cannot be in the future."
    if not requester:
        errors["requester"] = "Say who made the request (for example: mother, by letter)."
    if errors or received_on is None:
        return Opened(None, errors)
    request = SubjectAccessRequest(
        workspace_id=staff.workspace_id,
        pupil_id=pupil.id,
        received_on=received_on,
        due_on=subject_access.due_on(received_on, working),
        redact_staff=redact_staff,
        opened_by_id=staff.id,
        created_at=visit.now,
    )
    await keyring.seal(
        session, visit.setup.cipher, request, {SubjectAccessRequest.requester_ct: requester}
    )
    await session.flush()
    trail.add(
        OPEN,
        detail=f"request {request.id}; pupil {pupil.id}; due {request.due_on.isoformat()}"
        + ("; staff names too" if redact_staff else ""),
    )
    return Opened(request, {})


async def _request(
    session: AsyncSession, *, visit: Visit, request_id: int | None, action: str
) -> SubjectAccessRequest | None:
    """The request, if the visitor holds a key and it is of their school; else None, the
    refusal audited as `action`."""
    request = (
        await session.get(SubjectAccessRequest, request_id)
        if request_id is not None and is_keyholder(visit.staff.role_set)
        else None
    )
    if request is None or request.workspace_id != visit.staff.workspace_id:
        visit.trail(session).add(action, audit.REFUSED, detail=f"no request {request_id} here")
        return None
    return request


@dataclass(frozen=True)
class SarRow:
    request: SubjectAccessRequest
    pupil: str  # the pupil's name, for the key-holder's list
    days_left: int


async def list_requests(session: AsyncSession, *, visit: Visit) -> list[SarRow]:
    """The school's requests, open ones first by deadline, then the completed; audited."""
    staff = visit.staff
    if not is_keyholder(staff.role_set):
        visit.trail(session).add(LIST, audit.REFUSED)
        return []
    rows = list(
        await session.scalars(
            select(SubjectAccessRequest)
            .where(SubjectAccessRequest.workspace_id == staff.workspace_id)
            .order_by(
                SubjectAccessRequest.completed_at.is_not(None),
                SubjectAccessRequest.due_on,
                SubjectAccessRequest.id,
            )
        )
    )
    names = {
        r.id: r.display_name for r in await roster_names(session, workspace_id=staff.workspace_id)
    }
    today = visit.setup.school.working_time.working_day_of(visit.now)
    visit.trail(session).add(LIST, detail=f"{len(rows)} requests")
    return [
        SarRow(r, names.get(r.pupil_id, ""), subject_access.days_left(r.due_on, today))
        for r in rows
    ]


@dataclass(frozen=True)
class ReviewItem:
    redaction: Redaction
    snippets: list[Snippet]


@dataclass(frozen=True)
class Review:
    """What the review page shows: the request, who asked, the deadline, each redaction
    in context, and the pack as it will be exported (redacted)."""

    request: SubjectAccessRequest
    requester: str
    days_left: int
    items: list[ReviewItem]
    pack: Pack  # redacted
    school: str


async def _prepared(
    session: AsyncSession, *, visit: Visit, request: SubjectAccessRequest
) -> tuple[Pack, list[Redaction]] | None:
    """The pack (unredacted), with any name found since proposed, and every redaction."""
    cipher = visit.setup.cipher
    pack = await subject_access.gather(
        session, request=request, cipher=cipher, now=visit.now, viewer=visit.staff
    )
    if pack is None:
        return None
    await subject_access.propose(session, request=request, pack=pack, cipher=cipher, now=visit.now)
    found = await subject_access.redactions(session, request_id=request.id, cipher=cipher)
    return pack, found


def _redacted(pack: Pack, found: list[Redaction]) -> Pack:
    return subject_access.redact(pack, [r.phrase for r in found if r.active])


async def review(session: AsyncSession, *, visit: Visit, request_id: int | None) -> Review | None:
    """The review page of a request (new names found are proposed); audited."""
    request = await _request(session, visit=visit, request_id=request_id, action=VIEW)
    if request is None:
        return None
    prepared = await _prepared(session, visit=visit, request=request)
    if prepared is None:
        return None
    pack, found = prepared
    items = [ReviewItem(r, subject_access.snippets(pack, r.phrase)) for r in found]
    today = visit.setup.school.working_time.working_day_of(visit.now)
    visit.trail(session).add(
        VIEW, detail=f"request {request.id}; pupil {request.pupil_id}; {len(found)} redactions"
    )
    return Review(
        request=request,
        requester=subject_access.requester_of(request, visit.setup.cipher),
        days_left=subject_access.days_left(request.due_on, today),
        items=items,
        pack=_redacted(pack, found),
        school=await workspaces.school_name(session, workspace_id=request.workspace_id),
    )


async def remove_redaction(
    session: AsyncSession, *, visit: Visit, request_id: int | None, redaction_id: int | None
) -> bool:
    """The key-holder keeps a proposed (or added) phrase in the pack; audited."""
    request = await _request(session, visit=visit, request_id=request_id, action=REMOVE)
    if request is None:
        return False
    row = await session.get(SarRedaction, redaction_id) if redaction_id is not None else None
    if row is None or row.request_id != request.id:
        visit.trail(session).add(
            REMOVE, audit.REFUSED, detail=f"request {request.id}; no redaction {redaction_id}"
        )
        return False
    if row.removed_at is None:
        row.removed_at, row.removed_by_id = visit.now, visit.staff.id
    visit.trail(session).add(
        REMOVE, detail=f"request {request.id}; redaction {row.id} ({row.kind}) removed"
    )
    return True


async def add_redaction(
    session: AsyncSession, *, visit: Visit, request_id: int | None, phrase: str
) -> str | None:
    """The key-holder blacks out a word or phrase (a removed one is restored); audited by
    the redaction's number only. Returns why not, or None when done."""
    request = await _request(session, visit=visit, request_id=request_id, action=ADD)
    if request is None:
        return "not here"
    phrase = subject_access.clean_phrase(phrase)
    if subject_access.pattern(phrase) is None:
        return "Type the word or phrase to black out."
    cipher = visit.setup.cipher
    key = subject_access.fold_chars(phrase)
    same = [
        r
        for r in await subject_access.redactions(session, request_id=request.id, cipher=cipher)
        if subject_access.fold_chars(r.phrase) == key
    ]
    if same:
        row = same[0].row
        row.removed_at, row.removed_by_id = None, None
        detail = f"request {request.id}; redaction {row.id} restored"
    else:
        row = await subject_access.add_redaction(
            session,
            request_id=request.id,
            phrase=phrase,
            kind=ADDED,
            cipher=cipher,
            now=visit.now,
            by=visit.staff,
        )
        detail = f"request {request.id}; redaction {row.id} added"
    visit.trail(session).add(ADD, detail=detail)
    return None


@dataclass(frozen=True)
class Export:
    request: SubjectAccessRequest
    pack: Pack  # redacted
    school: str
    redactions: int


async def export(session: AsyncSession, *, visit: Visit, request_id: int | None) -> Export | None:
    """The redacted pack for its PDF (any name found since the review is redacted too);
    the export is recorded on the request and audited."""
    request = await _request(session, visit=visit, request_id=request_id, action=EXPORT)
    if request is None:
        return None
    prepared = await _prepared(session, visit=visit, request=request)
    if prepared is None:
        return None
    pack, found = prepared
    active = sum(1 for r in found if r.active)
    request.exported_at = visit.now
    visit.trail(session).add(
        EXPORT,
        detail=f"request {request.id}; pupil {request.pupil_id}; "
        f"{len(pack.lines)} entries; {active} redactions",
    )
    return Export(
        request,
        _redacted(pack, found),
        await workspaces.school_name(session, workspace_id=request.workspace_id),
        active,
    )


async def complete(session: AsyncSession, *, visit: Visit, request_id: int | None) -> bool:
    """The request is answered; audited."""
    request = await _request(session, visit=visit, request_id=request_id, action=COMPLETE)
    if request is None:
        return False
    if request.completed_at is None:
        request.completed_at, request.completed_by_id = visit.now, visit.staff.id
    visit.trail(session).add(COMPLETE, detail=f"request {request.id}")
    return True
