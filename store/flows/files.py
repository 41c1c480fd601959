"""Files on an incident: attaching one, and opening one to download or preview.

Access is the incident's (`visible_or_refused`, the one rule): anyone who may see the
concern may add files to it and read them; anyone else gets the one 404, audited. An
upload is read from the network before its row is written (`store.documents.intake`),
so the handler asks `may_attach` first, streams, then calls `attach`, which asks again
in the transaction that writes the row. Every download and preview is audited, and so
is every refused upload (by why: its kind or its size, never its name).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.documents import files
from store.documents.files import OpenedFile
from store.documents.intake import Sealed
from store.documents.kinds import PREVIEWABLE
from store.documents.sealing import FileIntegrityError
from store.documents.storage import FileStore
from store.flows import Visit
from store.flows.incidents import visible_or_refused
from store.models import IncidentAction, StoredFile

ADD, DOWNLOAD, PREVIEW = "file.add", "file.download", "file.preview"


class Damaged:
    """A file whose stored key or name failed its integrity check."""


DAMAGED = Damaged()


async def may_attach(session: AsyncSession, *, visit: Visit, number: int | None) -> int | None:
    """The incident's number if the visitor may add files to it (refusal audited)."""
    incident = await visible_or_refused(session, visit=visit, number=number, action=ADD)
    return None if incident is None else incident.number


@dataclass(frozen=True)
class Attached:
    incident_id: int
    number: int
    file_id: int


@dataclass(frozen=True)
class AttachRefused:
    """Not stored: why, in words for the person."""

    message: str
    number: int


async def attach(
    session: AsyncSession,
    *,
    visit: Visit,
    number: int | None,
    sealed: Sealed,
    name: str,
    store: FileStore,
    action_id: int | None = None,
) -> Attached | AttachRefused | None:
    """Store an accepted upload on the incident (with one of its actions, if given),
    audited; None (audited) if not theirs to see."""
    incident = await visible_or_refused(session, visit=visit, number=number, action=ADD)
    if incident is None:
        sealed.spool.discard()
        return None
    if action_id is not None:
        found = await session.scalar(
            select(IncidentAction.id).where(
                IncidentAction.id == action_id, IncidentAction.incident_id == incident.id
            )
        )
        if found is None:
            sealed.spool.discard()
            trail = visit.trail(session, incident_id=incident.id)
            trail.add(ADD, audit.FAILED, detail="invalid: action")
            return AttachRefused("That action is not on this concern.", incident.number)
    row = await files.store_file(
        session,
        cipher=visit.setup.cipher,
        store=store,
        sealed=sealed,
        name=name,
        uploader=visit.staff,
        incident_id=incident.id,
        action_id=action_id,
    )
    detail = f"file {row.id}; {row.kind}; {row.size} bytes"
    detail += f"; action {action_id}" if action_id is not None else ""
    visit.trail(session, incident_id=incident.id).add(ADD, subject_id=None, detail=detail)
    return Attached(incident.id, incident.number, row.id)


async def upload_refused(
    session: AsyncSession, *, visit: Visit, number: int | None, why: str
) -> None:
    """Audit an upload refused for its kind or size (nothing was stored)."""
    incident = await visible_or_refused(session, visit=visit, number=number, action=ADD)
    if incident is not None:
        visit.trail(session, incident_id=incident.id).add(ADD, audit.FAILED, detail=why)


async def open_for(
    session: AsyncSession,
    *,
    visit: Visit,
    number: int | None,
    file_id: int | None,
    preview: bool = False,
) -> OpenedFile | Damaged | None:
    """A file of the incident, opened for the visitor (audited), or None → the one 404.

    `DAMAGED` (logged, and audited as failed) when its stored key or name does not
    belong to its row: it is never served.
    """
    action = PREVIEW if preview else DOWNLOAD
    incident = await visible_or_refused(session, visit=visit, number=number, action=action)
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id)
    row = (
        await session.scalar(
            select(StoredFile).where(
                StoredFile.id == file_id, StoredFile.incident_id == incident.id
            )
        )
        if file_id is not None
        else None
    )
    if row is None or (preview and row.kind not in PREVIEWABLE):
        trail.add(action, audit.REFUSED, detail=f"no file {file_id} on #{incident.number}")
        return None
    try:
        opened = files.open_file(visit.setup.cipher, row)
    except FileIntegrityError:
        trail.add(action, audit.FAILED, detail=f"file {row.id}; integrity check failed")
        return DAMAGED
    trail.add(action, detail=f"file {row.id}")
    return opened
