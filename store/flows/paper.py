"""Scanned paper records: a key-holder adds a historic record to a pupil's chronology,
with its original date, a short description and its scans; and reads those scans back.

For the safeguarding team only (the handlers are `@keyholder_only`, as the chronology
is). The description is encrypted like a narrative; the scans are sealed like any
attachment, bound to the record. Immutable: a wrong record is explained by another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, keyring
from store.documents import files
from store.documents.files import OpenedFile
from store.documents.intake import Sealed
from store.documents.sealing import FileIntegrityError
from store.documents.storage import FileStore
from store.flows import Visit
from store.flows.files import DAMAGED, DOWNLOAD, Damaged
from store.models import PaperRecord, StoredFile
from store.pupils import pupil_in_workspace

ADD = "paper.add"
DESCRIPTION_MAX = 500
EARLIEST = dt.date(1990, 1, 1)


@dataclass(frozen=True)
class PaperDraft:
    """What the form sent: the record's date and description as typed, and its scans."""

    on: dt.date | None
    description: str
    uploads: list[tuple[Sealed, str]]  # each accepted file, and its (cleaned) name


def check_draft(draft: PaperDraft, *, today: dt.date) -> dict[str, str]:
    """What is wrong with the form, by field (empty when it may be saved)."""
    errors = {}
    if draft.on is None:
        errors["on"] = "Enter the date on the paper record."
    elif draft.on > today:
        errors["on"] = "The date cannot be in the future."
    elif draft.on < EARLIEST:
        errors["on"] = f"The date must be after {EARLIEST:%Y}."
    description = draft.description.strip()
    if not description:
        errors["description"] = "Describe the record briefly."
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = f"At most {DESCRIPTION_MAX} characters."
    if not draft.uploads:
        errors["files"] = "Add the scan (one or more files)."
    return errors


@dataclass(frozen=True)
class PaperAdded:
    pupil_id: int
    record_id: int


@dataclass(frozen=True)
class PaperRefused:
    errors: dict[str, str]


async def add_paper_record(
    session: AsyncSession,
    *,
    visit: Visit,
    pupil_id: int | None,
    draft: PaperDraft,
    store: FileStore,
    today: dt.date,
) -> PaperAdded | PaperRefused | None:
    """Add the record and its scans to the pupil's chronology, audited; None (audited)
    when there is no such pupil here. Refused drafts store nothing."""
    trail = visit.trail(session)
    pupil = (
        await pupil_in_workspace(session, workspace_id=visit.staff.workspace_id, pupil_id=pupil_id)
        if pupil_id is not None
        else None
    )
    if pupil is None:
        trail.add(ADD, audit.REFUSED, detail=f"no pupil {pupil_id} here")
        return None
    errors = check_draft(draft, today=today)
    if errors:
        trail.add(ADD, audit.FAILED, detail="invalid: " + ", ".join(sorted(errors)))
        return PaperRefused(errors)
    assert draft.on is not None
    record = PaperRecord(
        workspace_id=pupil.workspace_id,
        pupil_id=pupil.id,
        recorded_on=draft.on,
        added_by_id=visit.staff.id,
    )
    await keyring.seal(
        session, visit.setup.cipher, record, {PaperRecord.description_ct: draft.description.strip()}
    )
    for sealed, name in draft.uploads:
        await files.store_file(
            session,
            cipher=visit.setup.cipher,
            store=store,
            sealed=sealed,
            name=name,
            uploader=visit.staff,
            paper_record_id=record.id,
        )
    detail = f"pupil {pupil.id}; record {record.id}; {len(draft.uploads)} files"
    trail.add(ADD, detail=detail)
    return PaperAdded(pupil.id, record.id)


async def open_paper_file(
    session: AsyncSession,
    *,
    visit: Visit,
    pupil_id: int | None,
    record_id: int | None,
    file_id: int | None,
) -> OpenedFile | Damaged | None:
    """A scan of a paper record of this school's pupil, opened (audited), or None."""
    trail = visit.trail(session)
    row = None
    if None not in (pupil_id, record_id, file_id):
        row = await session.scalar(
            select(StoredFile)
            .join(PaperRecord, PaperRecord.id == StoredFile.paper_record_id)
            .where(
                StoredFile.id == file_id,
                PaperRecord.id == record_id,
                PaperRecord.pupil_id == pupil_id,
                PaperRecord.workspace_id == visit.staff.workspace_id,
            )
        )
    if row is None:
        trail.add(DOWNLOAD, audit.REFUSED, detail=f"no paper file {file_id}")
        return None
    try:
        opened = files.open_file(visit.setup.cipher, row)
    except FileIntegrityError:
        trail.add(DOWNLOAD, audit.FAILED, detail=f"file {row.id}; integrity check failed")
        return DAMAGED
    trail.add(DOWNLOAD, detail=f"file {row.id}; paper record {record_id}")
    return opened
