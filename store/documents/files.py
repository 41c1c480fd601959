"""The rows of stored files: writing one for an accepted upload, listing an incident's or
a paper record's files (names decrypted here, for the pages that show them), and reading
a file back, chunk by chunk, checking each chunk belongs where it is found.

A chunk, name or key that does not decrypt where it is stored raises
`FileIntegrityError`, logged as `file.integrity_error` with the file's id: a copied or
swapped ciphertext is refused, never served.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring
from store.crypto import Cipher, bind
from store.db import SessionFactory
from store.documents import sealing
from store.documents.images import preview_png
from store.documents.intake import Sealed
from store.documents.kinds import KINDS, PREVIEWABLE, Kind
from store.documents.s3 import FileStoreUnavailable
from store.documents.storage import FileStore, reading_store
from store.models import PaperRecord, Staff, StoredFile

log = structlog.get_logger(__name__)


def owner_of(row: StoredFile) -> str:
    """What the file is attached to, as bound into its wrapped key."""
    if row.paper_record_id is not None:
        return f"paper:{row.paper_record_id}"
    action = f"/action:{row.action_id}" if row.action_id is not None else ""
    return f"incident:{row.incident_id}{action}"


def binding(row: StoredFile) -> bytes:
    """The associated data of the file's wrapped key: its row."""
    return sealing.row_binding(token=row.token, workspace_id=row.workspace_id, owner=owner_of(row))


async def store_file(
    session: AsyncSession,
    *,
    cipher: Cipher,
    store: FileStore,
    sealed: Sealed,
    name: str,
    uploader: Staff,
    incident_id: int | None = None,
    action_id: int | None = None,
    paper_record_id: int | None = None,
) -> StoredFile:
    """Write the row of an accepted upload and commit its spool to the store."""
    row = StoredFile(
        workspace_id=uploader.workspace_id,
        token=sealed.token,
        incident_id=incident_id,
        action_id=action_id,
        paper_record_id=paper_record_id,
        kind=sealed.kind.value,
        size=sealed.size,
        chunk_count=sealed.chunk_count,
        name_ct=sealing.seal_name(sealed.file_key, name, token=sealed.token),
        storage=store.name,
        uploaded_by_id=uploader.id,
    )
    key_id = await keyring.record_key(
        session, cipher, incident_id=incident_id, paper_record_id=paper_record_id
    )
    row.key_ct = sealing.wrap_key(cipher, sealed.file_key, binding=binding(row), key_id=key_id)
    session.add(row)
    await session.flush()
    await sealed.spool.commit(session, file_id=row.id)
    return row


@dataclass(frozen=True)
class FileView:
    """A file as a page lists it (its name decrypted)."""

    id: int
    name: str
    kind: Kind
    label: str
    size: int
    uploaded_by: str
    created_at: dt.datetime
    previewable: bool
    readable: bool  # False when its key or name failed the integrity check
    incident_id: int | None = None
    paper_record_id: int | None = None
    action_id: int | None = None  # the action on the incident it was added with, if any


def _view(cipher: Cipher, row: StoredFile) -> FileView:
    kind = Kind(row.kind)
    try:
        key = sealing.unwrap_key(cipher, row.key_ct, binding=binding(row))
        name, readable = sealing.open_name(key, row.name_ct, token=row.token), True
    except sealing.FileIntegrityError:
        log.error("file.integrity_error", file=row.id, part="key or name")
        name, readable = "(this file failed its integrity check)", False
    return FileView(
        id=row.id,
        name=name,
        kind=kind,
        label=KINDS[kind].label,
        size=row.size,
        uploaded_by=row.uploaded_by.name,
        created_at=row.created_at,
        previewable=readable and kind in PREVIEWABLE,
        readable=readable,
        incident_id=row.incident_id,
        paper_record_id=row.paper_record_id,
        action_id=row.action_id,
    )


async def incident_files(
    session: AsyncSession, *, incident_id: int, cipher: Cipher
) -> list[FileView]:
    """An incident's files, oldest first, with their names decrypted."""
    rows = await session.scalars(
        select(StoredFile)
        .where(StoredFile.incident_id == incident_id)
        .order_by(StoredFile.created_at, StoredFile.id)
    )
    return [_view(cipher, row) for row in rows]


async def incidents_files(
    session: AsyncSession, *, incident_ids: list[int], cipher: Cipher
) -> list[FileView]:
    """The files of these incidents, oldest first, with their names decrypted."""
    if not incident_ids:
        return []
    rows = await session.scalars(
        select(StoredFile)
        .where(StoredFile.incident_id.in_(incident_ids))
        .order_by(StoredFile.created_at, StoredFile.id)
    )
    return [_view(cipher, row) for row in rows]


@dataclass(frozen=True)
class PaperView:
    """A paper record as the chronology shows it (its description decrypted)."""

    id: int
    on: dt.date
    description: str
    added_by: str
    created_at: dt.datetime
    files: list[FileView]


async def paper_records_of(
    session: AsyncSession, *, pupil_id: int, cipher: Cipher
) -> list[PaperView]:
    """A pupil's paper records, by original date, with their files."""
    records = list(
        await session.scalars(
            select(PaperRecord)
            .where(PaperRecord.pupil_id == pupil_id)
            .order_by(PaperRecord.recorded_on, PaperRecord.id)
        )
    )
    files = await paper_record_files(
        session, paper_record_ids=[r.id for r in records], cipher=cipher
    )
    return [
        PaperView(
            id=r.id,
            on=r.recorded_on,
            description=cipher.decrypt(r.description_ct, bind(PaperRecord.description_ct, r.id)),
            added_by=r.added_by.name,
            created_at=r.created_at,
            files=files[r.id],
        )
        for r in records
    ]


async def paper_record_files(
    session: AsyncSession, *, paper_record_ids: list[int], cipher: Cipher
) -> dict[int, list[FileView]]:
    """The files of each paper record, oldest first, names decrypted."""
    found: dict[int, list[FileView]] = {i: [] for i in paper_record_ids}
    if not paper_record_ids:
        return found
    rows = await session.scalars(
        select(StoredFile)
        .where(StoredFile.paper_record_id.in_(paper_record_ids))
        .order_by(StoredFile.created_at, StoredFile.id)
    )
    for row in rows:
        found[row.paper_record_id or 0].append(_view(cipher, row))
    return found


@dataclass(frozen=True)
class OpenedFile:
    """A file about to be sent: its row, its key and name (checked), what to call it."""

    row: StoredFile
    key: bytes
    name: str
    kind: Kind

    @property
    def media_type(self) -> str:
        return KINDS[self.kind].media_type


def open_file(cipher: Cipher, row: StoredFile) -> OpenedFile:
    """The file's key and name, checked against its row (raises `FileIntegrityError`)."""
    try:
        key = sealing.unwrap_key(cipher, row.key_ct, binding=binding(row))
        name = sealing.open_name(key, row.name_ct, token=row.token)
    except sealing.FileIntegrityError:
        log.error("file.integrity_error", file=row.id, part="key or name")
        raise
    return OpenedFile(row, key, name, Kind(row.kind))


async def plaintext(
    factory: SessionFactory, *, configured: FileStore, opened: OpenedFile
) -> AsyncIterator[bytes]:
    """The file's content, chunk by chunk, each checked where it stands."""
    row = opened.row
    store = reading_store(configured, row.storage)
    last = row.chunk_count - 1
    index = -1
    async for sealed in store.sealed_chunks(factory, file=row):
        index += 1
        try:
            yield sealing.open_chunk(
                opened.key, sealed, token=row.token, index=index, final=index == last
            )
        except sealing.FileIntegrityError:
            log.error("file.integrity_error", file=row.id, part="chunk", index=index)
            raise
        if index == last:
            return
    if index != last:
        log.error("file.integrity_error", file=row.id, part="missing chunks", index=index + 1)
        raise sealing.FileIntegrityError("the file is missing chunks")


async def previews(
    factory: SessionFactory, *, configured: FileStore, cipher: Cipher, views: list[FileView]
) -> dict[int, str]:
    """`data:` URIs of small previews of the images among `views` (files a page already
    shows to its reader), by file id; a file that fails its checks has none."""
    found: dict[int, str] = {}
    for view in views:
        if not view.previewable:
            continue
        async with factory() as session:
            row = await session.get(StoredFile, view.id)
        if row is None:
            continue
        try:
            opened = open_file(cipher, row)
            content = b"".join(
                [piece async for piece in plaintext(factory, configured=configured, opened=opened)]
            )
        except (sealing.FileIntegrityError, FileStoreUnavailable):
            continue
        png = preview_png(content)
        if png is not None:
            found[view.id] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return found
