"""What a file is, by its content: each accepted kind, and what is refused. And the
sealing of a file: chunks that only open in their own place, in their own file."""

from __future__ import annotations

import io
import os
import zipfile

import openpyxl
import pytest

from store.crypto import Cipher, generate_key
from store.documents import sealing
from store.documents.intake import Intake, TooLarge, clean_name
from store.documents.kinds import HEAD, Kind, Refused, Sniffer
from store.documents.storage import DatabaseStore


def sniff(data: bytes, piece: int = 1000) -> Kind:
    sniffer = Sniffer()
    for start in range(0, len(data), piece):
        sniffer.feed(data[start : start + piece])
    return sniffer.finish()


def office(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def docx() -> bytes:
    return office(
        {
            "[Content_Types].xml": b"<Types/>",
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document/>" + b" " * 20000,
        }
    )


def xlsx() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["a", 1])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MSG = OLE + b"\x00" * 600 + "__substg1.0_0037001F".encode("utf-16-le") + b"\x00" * 9000
DOC = OLE + b"\x00" * 600 + "WordDocument".encode("utf-16-le") + b"\x00" * 9000
EML = (
    b"Received: from mail.example.org\r\nFrom: Head <head@example.org>\r\n"
    b"Subject: About a pupil\r\n\r\nHello.\r\n"
)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 5000


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n" + b"x" * 20000, Kind.PDF),
        (docx(), Kind.DOCX),
        (xlsx(), Kind.XLSX),
        (MSG, Kind.MSG),
        (EML, Kind.EML),
        (HEIC, Kind.HEIC),
        ("Notes from the meeting: café, naïve, £5.\n".encode() * 500, Kind.TXT),
    ],
    ids=lambda v: v.value if isinstance(v, Kind) else "",
)
def test_accepted_kinds_are_known_by_their_content(data: bytes, kind: Kind) -> None:
    assert sniff(data) is kind
    assert sniff(data, piece=7) is kind  # however the network splits it


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"MZ\x90\x00" + b"\x00" * 9000, "not a kind"),  # a Windows program
        (b"\x7fELF" + b"\x00" * 100, "not a kind"),
        (office({"a.txt": b"hello" * 4000}), "not a Word or Excel document"),
        (office({"[Content_Types].xml": b"<x/>", "ppt/p.xml": b"x" * 9000}), "not a Word"),
        (DOC, "not an Outlook message"),
        (b"caf\xe9 au lait\n" * 1000, "UTF-8"),  # Latin-1, not UTF-8
        (b"plain text" * 1000 + b"\x00", "not plain text"),
        (b"", "empty"),
        (b"GIF89a" + b"\x00" * 100, "not a kind"),
    ],
)
def test_other_content_is_refused_with_a_clear_message(data: bytes, why: str) -> None:
    with pytest.raises(Refused, match=why) as refused:
        sniff(data)
    assert "Accepted: PDF, JPEG, PNG" in str(refused.value)


def test_an_unknown_kind_is_refused_at_its_first_bytes_not_at_its_end() -> None:
    intake = Intake(DatabaseStore(), max_bytes=10**9)
    with pytest.raises(Refused):
        intake.feed(b"MZ" + b"\x00" * HEAD)


def test_a_file_past_the_limit_is_refused_at_the_piece_that_passes_it() -> None:
    intake = Intake(DatabaseStore(), max_bytes=100_000)
    intake.feed(b"%PDF-1.4\n" + b"x" * 90_000)
    with pytest.raises(TooLarge, match="larger than 0.0954 MB"):
        intake.feed(b"x" * 20_000)


def test_names_lose_folders_and_control_characters() -> None:
    assert clean_name("C:\\Users\\head\\Desktop\\letter.pdf") == "letter.pdf"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("a\x00b\r\nc.txt") == "a_b_c.txt"
    assert clean_name("") == "file" and len(clean_name("x" * 500)) == 200


def test_a_chunk_opens_only_in_its_own_place_in_its_own_file() -> None:
    key, other = sealing.new_file_key(), sealing.new_file_key()
    sealed = sealing.seal_chunk(key, b"content", token="a" * 32, index=3, final=False)
    assert sealing.open_chunk(key, sealed, token="a" * 32, index=3, final=False) == b"content"
    for kwargs in (
        {"token": "b" * 32, "index": 3, "final": False},  # another file
        {"token": "a" * 32, "index": 4, "final": False},  # another place
        {"token": "a" * 32, "index": 3, "final": True},  # passed off as the last
    ):
        with pytest.raises(sealing.FileIntegrityError):
            sealing.open_chunk(key, sealed, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(sealing.FileIntegrityError):
        sealing.open_chunk(other, sealed, token="a" * 32, index=3, final=False)


def test_a_wrapped_key_opens_only_for_its_row_and_after_a_key_rotation() -> None:
    old = generate_key()
    cipher = Cipher(old)
    cipher.add_data_key(7, os.urandom(32))
    key = sealing.new_file_key()
    binding = sealing.row_binding(token="a" * 32, workspace_id=1, owner="incident:7")
    wrapped = sealing.wrap_key(cipher, key, binding=binding)
    assert wrapped[0] == 2 and len(wrapped) == 65  # version byte, data key id, nonce...
    assert sealing.unwrap_key(cipher, wrapped, binding=binding) == key
    # A file key wrapped before data keys still opens with its key among the configured.
    legacy = sealing.wrap_key_legacy(cipher, key, binding=binding)
    assert sealing.unwrap_key(Cipher(f"{generate_key()},{old}"), legacy, binding=binding) == key
    moved = sealing.row_binding(token="a" * 32, workspace_id=1, owner="incident:8")
    with pytest.raises(sealing.FileIntegrityError):
        sealing.unwrap_key(cipher, wrapped, binding=moved)
    with pytest.raises(sealing.FileIntegrityError):
        sealing.unwrap_key(Cipher(generate_key()), wrapped, binding=binding)
