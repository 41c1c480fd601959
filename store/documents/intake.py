"""An upload, read piece by piece as it arrives: sniffed, cleaned, sealed, spooled.

`Intake.feed` takes each piece of the file as the network delivers it; nothing but the
first few kilobytes (to decide the kind) and the pieces not yet sealed are held, except
for JPEG and PNG images, which are held whole (at most `VIGIL_MAX_UPLOAD_MB`) to be
re-encoded without their metadata. A file larger than the limit is stopped at the
first piece past it (`TooLarge`); a file of a kind Vigil does not keep is stopped as
soon as its first bytes say so, or at the end (`Refused`). Either way the spool is
discarded and nothing is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from store.documents import sealing
from store.documents.images import without_metadata
from store.documents.kinds import IMAGES, Kind, Refused, Sniffer, refusal
from store.documents.storage import FileStore, Spool

NAME_MAX = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


class TooLarge(Exception):
    """The file is larger than the configured limit."""

    def __init__(self, limit: int) -> None:
        megabytes = f"{limit / 2**20:.3g}"
        super().__init__(f"This file is larger than {megabytes} MB, the most Vigil accepts.")


def clean_name(raw: str | None) -> str:
    """A file name as shown and offered on download: no folders, no control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    return name[:NAME_MAX] or "file"


@dataclass(frozen=True)
class Sealed:
    """An accepted upload, sealed and spooled, waiting for its row."""

    token: str
    file_key: bytes
    kind: Kind
    size: int
    chunk_count: int
    spool: Spool


class Intake:
    """One upload in progress."""

    def __init__(self, store: FileStore, *, max_bytes: int) -> None:
        self.token = sealing.new_token()
        self.max_bytes = max_bytes
        self._key = sealing.new_file_key()
        self._spool = store.spool(self.token)
        self._sniffer = Sniffer()
        self._held = bytearray()
        self._received = 0
        self._size = 0
        self._sealed = 0
        self._closed = False

    def feed(self, data: bytes) -> None:
        """The next piece of the file (raises `TooLarge` or `Refused`, discarding all)."""
        try:
            self._received += len(data)
            if self._received > self.max_bytes:
                raise TooLarge(self.max_bytes)
            sniffer = self._sniffer
            sniffer.feed(data)
            self._held += data
            if not sniffer.decided:
                return
            if sniffer.kind is None:
                raise refusal("its content is not a kind Vigil keeps")
            if sniffer.kind not in IMAGES:
                self._seal_held(final=False)
        except (TooLarge, Refused):
            self.discard()
            raise

    def _seal_held(self, *, final: bool) -> None:
        chunk = sealing.CHUNK
        while len(self._held) > chunk or (final and self._held):
            piece = bytes(self._held[:chunk])
            del self._held[:chunk]
            last = final and not self._held
            self._spool.write(
                sealing.seal_chunk(
                    self._key, piece, token=self.token, index=self._sealed, final=last
                )
            )
            self._size += len(piece)
            self._sealed += 1

    def finish(self) -> Sealed:
        """The accepted upload (raises `Refused`, discarding all)."""
        try:
            kind = self._sniffer.finish()
            if kind in IMAGES:
                self._held = bytearray(without_metadata(bytes(self._held), kind))
            self._seal_held(final=True)
        except Refused:
            self.discard()
            raise
        return Sealed(self.token, self._key, kind, self._size, self._sealed, self._spool)

    def discard(self) -> None:
        if not self._closed:
            self._closed = True
            self._spool.discard()
