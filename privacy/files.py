"""The privacy check's part for documents: attached files and scanned paper records.

From each stored file (opened with `VIGIL_DATA_KEY`, as the web view opens it) come what
must not be found in plain text: its name (a text needle, for the word matcher), and a
few samples of its content, 32 bytes each from its first, middle and last chunks
(raw bytes, looked for byte for byte). The samples are looked for in a raw dump of
every table (every value that is bytes or text) and in every file of a directory store
or every object of an S3 store under its prefix (`VIGIL_FILES_URL`), which are also
searched for names as text. A paper record's
description is a stored text like a narrative (`privacy.school` adds it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from privacy.matching import Matcher, Needle, normalise
from privacy.report import Finding, Report
from privacy.sources import raw_rows, stream_rows, table_shapes
from store.crypto import Cipher
from store.documents import sealing
from store.documents.files import owner_of
from store.documents.s3 import S3, S3Store
from store.documents.sealing import FileIntegrityError
from store.documents.storage import DIRECTORY, DirectoryStore
from store.models import FileChunk, StoredFile

SAMPLE = 32
NAME_MIN = 6  # shorter names ("a.pdf") are too common to look for
WINDOW = 1024 * 1024  # a file store's files are read this much at a time
CARRY = 256  # bytes of one window kept to find what straddles two


@dataclass(frozen=True)
class Sample:
    data: bytes
    kind: str  # "content of file id 7"


@dataclass
class FileValues:
    names: list[Needle] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    files: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)


def _sample(plain: bytes) -> bytes | None:
    """A window of the chunk varied enough to be its own (not a run of zeros or spaces)."""
    for start in range(0, max(1, len(plain) - SAMPLE + 1), 97):
        window = plain[start : start + SAMPLE]
        if len(window) == SAMPLE and len(set(window)) >= 12:
            return window
    return None


def directory_of(files_url: str) -> Path | None:
    """The directory a `VIGIL_FILES_URL` names, if it names one."""
    parts = urlsplit(files_url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path))


async def _s3_chunks(store: S3Store, token: str, wanted: set[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    index = -1
    async for sealed in store.read_sealed(token):
        index += 1
        if index in wanted:
            found[index] = sealed
        if index >= max(wanted):
            break
    return found


async def _sealed_chunks(
    connection: AsyncConnection,
    row: StoredFile,
    directory: Path | None,
    wanted: set[int],
    s3: S3Store | None = None,
) -> dict[int, bytes]:
    if row.storage == S3:
        return {} if s3 is None else await _s3_chunks(s3, row.token, wanted)
    if row.storage == DIRECTORY:
        if directory is None:
            return {}
        chunks = enumerate(DirectoryStore(directory).read_sealed(row.token))
        return {index: sealed for index, sealed in chunks if index in wanted}
    query = select(FileChunk.position, FileChunk.data).where(
        FileChunk.file_id == row.id, FileChunk.position.in_(sorted(wanted))
    )
    return {position: bytes(data) async for position, data in stream_rows(connection, query)}


async def file_values(
    connection: AsyncConnection,
    cipher: Cipher,
    directory: Path | None,
    s3: S3Store | None = None,
) -> FileValues:
    """Every stored file's name and content samples (what must not be found)."""
    values = FileValues()
    rows = select(StoredFile.__table__)
    async for raw in stream_rows(connection, rows):
        row = StoredFile(**dict(zip(StoredFile.__table__.columns.keys(), raw, strict=True)))
        values.files += 1
        binding = sealing.row_binding(
            token=row.token, workspace_id=row.workspace_id, owner=owner_of(row)
        )
        try:
            key = sealing.unwrap_key(cipher, row.key_ct, binding=binding)
            name = sealing.open_name(key, row.name_ct, token=row.token)
        except sealing.FileIntegrityError:
            values.unreadable["files.key_ct"] += 1
            continue
        label = f"file id {row.id}"
        folded = normalise(name).strip()
        if len(folded) >= NAME_MIN:
            values.names.append(Needle(folded, f"name of {label}"))
        last = row.chunk_count - 1
        wanted = {0, last // 2, last}
        try:
            chunks = await _sealed_chunks(connection, row, directory, wanted, s3)
        except FileIntegrityError:  # not in the store, or cut short
            values.unreadable["the file store (missing or cut short)"] += 1
            continue
        for index, sealed in chunks.items():
            try:
                plain = sealing.open_chunk(
                    key, sealed, token=row.token, index=index, final=index == last
                )
            except sealing.FileIntegrityError:
                values.unreadable["file_chunks.data"] += 1
                continue
            if (window := _sample(plain)) is not None:
                values.samples.append(Sample(window, f"content of {label}"))
    return values


def _pattern(samples: Iterable[Sample]) -> tuple[re.Pattern[bytes] | None, dict[bytes, str]]:
    kinds = {s.data: s.kind for s in samples}
    if not kinds:
        return None, kinds
    return re.compile(b"|".join(re.escape(data) for data in kinds)), kinds


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return None


async def search_database_bytes(
    connection: AsyncConnection, values: FileValues, report: Report
) -> None:
    """Every bytes or text value of every row of every table, for file content."""
    pattern, kinds = _pattern(values.samples)
    if pattern is None:
        return
    for shape in await table_shapes(connection):
        async for row in raw_rows(connection, shape):
            for name, value in zip(shape.columns, row, strict=True):
                data = _as_bytes(value)
                if data is None:
                    continue
                for found in {m.group() for m in pattern.finditer(data)}:
                    report.add(Finding("database", kinds[found], f"{shape.name}.{name}"))


class _Scan:
    """One stored file or object, searched a window at a time for file content (bytes)
    and for names and any other needle (as text)."""

    def __init__(self, values: FileValues, matcher: Matcher, report: Report, location: str) -> None:
        self.pattern, self.kinds = _pattern(values.samples)
        self.matcher, self.report, self.location = matcher, report, location
        self.carry = b""

    def feed(self, block: bytes) -> None:
        data = self.carry + block
        if self.pattern is not None:
            for found in {m.group() for m in self.pattern.finditer(data)}:
                self.report.add(Finding("file store", self.kinds[found], self.location))
        self.report.found(
            self.matcher.find(data.decode("latin-1")), where="file store", location=self.location
        )
        self.carry = data[-CARRY:]


def search_directory(directory: Path, values: FileValues, matcher: Matcher, report: Report) -> int:
    """Every file under a directory store, for file content (bytes) and for names and any
    other needle (as text). Returns how many files were searched."""
    searched = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        searched += 1
        scan = _Scan(values, matcher, report, f"the file store ({path.relative_to(directory)})")
        with path.open("rb") as handle:
            while block := handle.read(WINDOW):
                scan.feed(block)
    return searched


async def search_s3(store: S3Store, values: FileValues, matcher: Matcher, report: Report) -> int:
    """Every object under an S3 store's prefix, searched as a directory store's files are.
    Returns how many objects were searched."""
    searched = 0
    async for key in store.keys():
        searched += 1
        scan = _Scan(values, matcher, report, f"the file store ({key})")
        async for block in store.raw(key, window=WINDOW):
            scan.feed(block)
    return searched
