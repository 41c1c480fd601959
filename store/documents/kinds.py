"""What a file is, from its content alone (magic bytes and structure), never its name.

`Sniffer` is fed the file piece by piece: the first bytes decide the candidate kind, and
what can only be known at the end (a ZIP's central directory, text that is UTF-8 all the
way through, an Outlook message's stream names) is checked as the bytes pass, keeping
at most a bounded tail in memory. `finish` answers the kind or raises `Refused` with a
message a person can act on.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from enum import StrEnum

HEAD = 8 * 1024  # bytes needed before the first decision
ZIP_TAIL = 1024 * 1024  # the end of a ZIP kept to read its central directory


class Kind(StrEnum):
    PDF = "pdf"
    JPEG = "jpeg"
    PNG = "png"
    HEIC = "heic"
    DOCX = "docx"
    XLSX = "xlsx"
    TXT = "txt"
    EML = "eml"
    MSG = "msg"


@dataclass(frozen=True)
class KindInfo:
    media_type: str
    label: str
    extension: str


KINDS = {
    Kind.PDF: KindInfo("application/pdf", "PDF document", "pdf"),
    Kind.JPEG: KindInfo("image/jpeg", "JPEG image", "jpg"),
    Kind.PNG: KindInfo("image/png", "PNG image", "png"),
    Kind.HEIC: KindInfo("image/heic", "HEIC image", "heic"),
    Kind.DOCX: KindInfo(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Word document",
        "docx",
    ),
    Kind.XLSX: KindInfo(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Excel workbook",
        "xlsx",
    ),
    Kind.TXT: KindInfo("text/plain; charset=utf-8", "text file", "txt"),
    Kind.EML: KindInfo("message/rfc822", "email (.eml)", "eml"),
    Kind.MSG: KindInfo("application/vnd.ms-outlook", "Outlook message (.msg)", "msg"),
}
IMAGES = frozenset({Kind.JPEG, Kind.PNG, Kind.HEIC})  # re-encoded without metadata
PREVIEWABLE = frozenset({Kind.JPEG, Kind.PNG})  # what every browser shows

ACCEPTED = "PDF, JPEG, PNG, HEIC, Word (.docx), Excel (.xlsx), text, email (.eml or .msg)"


class Refused(Exception):
    """The file is not one of the accepted kinds (or not a well-formed one)."""


def refusal(detail: str = "") -> Refused:
    lead = "This file cannot be attached"
    return Refused(f"{lead}{': ' + detail if detail else ''}. Accepted: {ACCEPTED}.")


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
# An email's first line is a header (RFC 5322): a name, a colon.
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:[ \t]?[^\r\n]*\r?\n")
_EMAIL_HEADERS = (b"from:", b"received:", b"return-path:", b"message-id:", b"delivered-to:")
_MSG_STREAM = "__substg1.0_".encode("utf-16-le")


def first_guess(head: bytes) -> Kind | None:
    """The kind the first bytes claim (to be confirmed by the rest), or None."""
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return Kind.PDF
    if head.startswith(b"\xff\xd8\xff"):
        return Kind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind.PNG
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        brands = head[8:12] + head[16 : int.from_bytes(head[:4], "big")]
        if any(brand in brands for brand in (b"heic", b"heix", b"hevc", b"hevx")):
            return Kind.HEIC
        return None
    if head.startswith(b"PK\x03\x04"):
        return Kind.DOCX  # or XLSX: the central directory decides
    if head.startswith(OLE):
        return Kind.MSG
    if b"\x00" in head:
        return None
    lower = head.lower()
    if _HEADER_LINE.match(head) and any(
        lower.startswith(h) or b"\n" + h in lower for h in _EMAIL_HEADERS
    ):
        return Kind.EML
    return Kind.TXT


def zip_names(tail: bytes, *, total: int) -> list[str]:
    """The names in a ZIP's central directory, read from the file's last bytes."""
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise refusal("the archive is damaged")
    size = int.from_bytes(tail[end + 12 : end + 16], "little")
    offset = int.from_bytes(tail[end + 16 : end + 20], "little")
    start = offset - (total - len(tail))
    if start < 0 or start + size > end:
        raise refusal("the archive is damaged or too large to check")
    directory, names, at = tail[start : start + size], [], 0
    while at + 46 <= len(directory) and directory[at : at + 4] == b"PK\x01\x02":
        name_len = int.from_bytes(directory[at + 28 : at + 30], "little")
        extra = int.from_bytes(directory[at + 30 : at + 32], "little")
        comment = int.from_bytes(directory[at + 32 : at + 34], "little")
        names.append(directory[at + 46 : at + 46 + name_len].decode("utf-8", "replace"))
        at += 46 + name_len + extra + comment
    return names


class Sniffer:
    """Fed a file piece by piece; `finish` confirms its kind or refuses it."""

    def __init__(self) -> None:
        self.head = b""
        self.kind: Kind | None = None
        self.total = 0
        self._decided = False
        self._tail = b""
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._nul = False
        self._not_utf8 = False
        self._ole_names = False
        self._ole_carry = b""

    @property
    def decided(self) -> bool:
        return self._decided

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if not self._decided:
            self.head += data
            if len(self.head) < HEAD:
                return
            self._decide()
            self._watch(self.head)
            return
        self._watch(data)

    def _decide(self) -> None:
        self._decided = True
        self.kind = first_guess(self.head)

    def _watch(self, data: bytes) -> None:
        kind = self.kind
        if kind in (Kind.TXT, Kind.EML):
            if b"\x00" in data:
                self._nul = True
            if kind is Kind.TXT and not self._not_utf8:
                try:
                    self._text.decode(data)
                except UnicodeDecodeError:
                    self._not_utf8 = True
        elif kind in (Kind.DOCX, Kind.XLSX):
            self._tail = (self._tail + data)[-ZIP_TAIL:]
        elif kind is Kind.MSG and not self._ole_names:
            window = self._ole_carry + data
            self._ole_names = _MSG_STREAM in window
            self._ole_carry = window[-len(_MSG_STREAM) :]

    def finish(self) -> Kind:
        """The file's kind, or `Refused`."""
        if not self._decided:
            self._decide()
            self._watch(self.head)
        if self.total == 0:
            raise refusal("the file is empty")
        kind = self.kind
        if kind is None:
            raise refusal("its content is not a kind Vigil keeps")
        if kind in (Kind.TXT, Kind.EML) and self._nul:
            raise refusal("it is not plain text")
        if kind is Kind.TXT:
            try:
                self._text.decode(b"", final=True)
            except UnicodeDecodeError:
                self._not_utf8 = True
            if self._not_utf8:
                raise refusal("text files must be UTF-8")
        if kind in (Kind.DOCX, Kind.XLSX):
            names = set(zip_names(self._tail, total=self.total))
            if "[Content_Types].xml" not in names:
                raise refusal("the archive is not a Word or Excel document")
            if "word/document.xml" in names:
                return Kind.DOCX
            if "xl/workbook.xml" in names:
                return Kind.XLSX
            raise refusal("the archive is not a Word or Excel document")
        if kind is Kind.MSG and not self._ole_names:
            raise refusal("the file is an Office file but not an Outlook message")
        return kind
