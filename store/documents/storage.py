"""Where sealed chunks live: the database (default), a directory or an S3-compatible
bucket (`VIGIL_FILES_URL`).

An upload is first spooled (sealed chunks only: no plaintext touches the disk) while it
is read from the network; only once it is accepted, and its row written, is the spool
committed to the store, in the row's transaction (`Spool.commit`). Nothing here ever
deletes a stored file: files are immutable.

A directory store keeps one file per upload, named by the file's random token (never its
name), holding each sealed chunk as a 4-byte length and the chunk. An S3 store
(`s3://bucket/prefix`, `store.documents.s3`) keeps one object per upload laid out the same.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import SessionFactory
from store.documents.s3 import S3Store
from store.models import FileChunk, StoredFile

DATABASE, DIRECTORY = "database", "directory"
_LENGTH = 4
_READ_BATCH = 16  # chunks read per short database session when streaming a download
_WRITE_BATCH = 8  # chunks inserted per statement when an upload is stored


class FilesUrlError(ValueError):
    """`VIGIL_FILES_URL` names a store Vigil cannot use."""


def _record(handle: IO[bytes]) -> bytes | None:
    """The next sealed chunk of a spool or stored file, or None at its end."""
    length = handle.read(_LENGTH)
    if not length:
        return None
    size = int.from_bytes(length, "big")
    data = handle.read(size)
    if len(data) != size:
        raise OSError("a stored file ends early")
    return data


class Spool(Protocol):
    def write(self, sealed: bytes) -> None: ...
    async def commit(self, session: AsyncSession, *, file_id: int) -> None: ...
    def discard(self) -> None: ...


class FileStore(Protocol):
    name: str

    def spool(self, token: str) -> Spool: ...

    async def check(self) -> None:
        """Reach the store at start-up (an S3 bucket; the others are checked on opening)."""
        ...

    async def close(self) -> None: ...

    async def destroy(self, token: str) -> None:
        """Remove a destroyed record's file (in the database: its rows already went)."""
        ...

    def sealed_chunks(self, factory: SessionFactory, *, file: StoredFile) -> AsyncIterator[bytes]:
        """The file's sealed chunks, in order."""
        ...


# -- in the database ---------------------------------------------------------------------


class _DatabaseSpool:
    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()

    def write(self, sealed: bytes) -> None:
        self._file.write(len(sealed).to_bytes(_LENGTH, "big") + sealed)

    async def commit(self, session: AsyncSession, *, file_id: int) -> None:
        self._file.seek(0)
        position = 0
        batch: list[dict[str, object]] = []
        try:
            # Plain INSERTs, a few chunks at a time: no ORM objects kept in the session.
            while (record := _record(self._file)) is not None:
                batch.append({"file_id": file_id, "position": position, "data": record})
                position += 1
                if len(batch) == _WRITE_BATCH:
                    await session.execute(insert(FileChunk), batch)
                    batch = []
            if batch:
                await session.execute(insert(FileChunk), batch)
        finally:
            self._file.close()

    def discard(self) -> None:
        self._file.close()


class DatabaseStore:
    """Sealed chunks in `file_chunks` rows (the default)."""

    name = DATABASE

    def spool(self, token: str) -> Spool:
        return _DatabaseSpool()

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def destroy(self, token: str) -> None:
        return None  # the chunks are rows, deleted with the file's

    async def sealed_chunks(
        self, factory: SessionFactory, *, file: StoredFile
    ) -> AsyncIterator[bytes]:
        for start in range(0, file.chunk_count, _READ_BATCH):
            async with factory() as session:
                rows = await session.scalars(
                    select(FileChunk.data)
                    .where(
                        FileChunk.file_id == file.id,
                        FileChunk.position >= start,
                        FileChunk.position < start + _READ_BATCH,
                    )
                    .order_by(FileChunk.position)
                )
                batch = [bytes(data) for data in rows]
            for data in batch:
                yield data


# -- in a directory ----------------------------------------------------------------------


class _DirectorySpool:
    def __init__(self, root: Path, token: str) -> None:
        self._final = root / token[:2] / f"{token}.vgf"
        descriptor, name = tempfile.mkstemp(prefix=".upload-", dir=root)
        self._path = Path(name)
        self._file = os.fdopen(descriptor, "wb")

    def write(self, sealed: bytes) -> None:
        self._file.write(len(sealed).to_bytes(_LENGTH, "big") + sealed)

    async def commit(self, session: AsyncSession, *, file_id: int) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._final.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(self._path, self._final)

    def discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class DirectoryStore:
    """Sealed files under a directory: `<root>/<token[:2]>/<token>.vgf`."""

    name = DIRECTORY

    def __init__(self, root: Path) -> None:
        self.root = root

    def spool(self, token: str) -> Spool:
        return _DirectorySpool(self.root, token)

    async def check(self) -> None:
        return None  # checked writable by `open_store`

    async def close(self) -> None:
        return None

    def path(self, token: str) -> Path:
        return self.root / token[:2] / f"{token}.vgf"

    async def destroy(self, token: str) -> None:
        self.path(token).unlink(missing_ok=True)

    def read_sealed(self, token: str) -> Iterator[bytes]:
        """A stored file's sealed chunks, in order (blocking reads)."""
        with self.path(token).open("rb") as handle:
            while (record := _record(handle)) is not None:
                yield record

    async def sealed_chunks(
        self, factory: SessionFactory, *, file: StoredFile
    ) -> AsyncIterator[bytes]:
        for record in self.read_sealed(file.token):
            yield record


def check_files_url(url: str) -> str:
    """`VIGIL_FILES_URL` as given, if Vigil can use it (empty: the database)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
            raise FilesUrlError(
                "an S3 store is given as s3://bucket or s3://bucket/prefix (credentials come "
                "from the AWS environment or config, never the URL)"
            )
        return url
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        raise FilesUrlError(
            "must be empty (files in the database), a directory as file:///absolute/path, "
            "or an S3 bucket as s3://bucket/prefix"
        )
    return url


def open_store(url: str, *, s3_endpoint_url: str = "", s3_region: str = "") -> FileStore:
    """The store `VIGIL_FILES_URL` names (created, private to Vigil, if it is a directory;
    an S3 bucket is reached only by `FileStore.check`, at start-up)."""
    check_files_url(url)
    if not url:
        return DatabaseStore()
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3Store(
            bucket=parts.netloc,
            prefix=unquote(parts.path),
            endpoint_url=s3_endpoint_url or None,
            region=s3_region or None,
        )
    root = Path(unquote(parts.path))
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root)
        probe.close()
    except OSError as error:
        raise FilesUrlError(f"the directory {root} cannot be written: {error.strerror}") from None
    return DirectoryStore(root)


def reading_store(configured: FileStore, storage: str) -> FileStore:
    """The store a file was written to: the database, or the configured directory or bucket."""
    if storage == DATABASE:
        return DatabaseStore()
    if configured.name != storage:
        raise FilesUrlError(f"this file is in the {storage} store, which is not configured")
    return configured
