"""Reading a roster CSV: decoding it, splitting it into records, finding the columns.

An Excel workbook (.xlsx) is read too (`xlsxfile`), into the same rows.

A whole-file problem (unreadable, not text, not CSV, empty, a required column missing or
repeated) raises `RosterFileError`; a row that does not line up with the header is kept
with its problem, for the import to report by line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from store.roster import xlsxfile
from store.roster.report import RosterFileError

_HEADER_SEPARATORS = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class Record:
    """One non-blank data row: where it starts and its known columns' values."""

    line: int
    values: dict[str, str]
    problem: str | None = None  # the row does not line up with the header


@dataclass
class Table:
    """A decoded, split CSV file: its encoding and its non-blank data records."""

    encoding: str
    records: list[Record]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a RosterFileError saying why not."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise RosterFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding used: UTF-8 (BOM optional), UTF-16 with a BOM, or cp1252."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise RosterFileError("the file is not valid UTF-16 text") from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise RosterFileError(
            "the file is neither UTF-8 nor Windows-1252 (cp1252) text: export the roster "
            "from the MIS as CSV (UTF-8) or as an Excel workbook (.xlsx)"
        ) from exc


def _split(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = f"line {reader.line_num}: the file is not valid CSV ({exc})"
            raise RosterFileError(reason) from exc
        yield start, fields
        start = reader.line_num + 1


def _is_blank(fields: list[str]) -> bool:
    """True for a row with no content at all."""
    return not any(f.strip() for f in fields)


def _header_name(raw: str) -> str:
    """A header normalised for matching: trimmed, lower case, `Date of birth` -> `date_of_birth`."""
    return _HEADER_SEPARATORS.sub("_", raw.replace("\ufeff", "").strip().lower())


def _columns(
    header: list[str], *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, int]:
    """The position of each known column; a RosterFileError if a required one is missing."""
    positions: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _header_name(raw)
        if name not in required and name not in optional:
            continue
        if name in positions:
            raise RosterFileError(f"column '{name}' appears more than once in the header")
        positions[name] = index
    missing = [name for name in required if name not in positions]
    if missing:
        # The header is not echoed: in a file without one, the first line is a pupil.
        raise RosterFileError(
            f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            f"(the first line must be a header naming the columns: {', '.join(required)})"
        )
    return positions


def _shape_problem(fields: list[str], width: int) -> str | None:
    """Why a row's fields do not line up with the header, if they do not."""
    if len(fields) > width and not _is_blank(fields[width:]):
        return (
            f"the row has {len(fields)} fields but the header has {width} "
            "(is there an unquoted comma in a value?)"
        )
    return None


# Files that are not a roster in any form Vigil reads, by their first bytes.
_NOT_ROSTERS = {
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an old Excel workbook (.xls): open it in Excel "
    "or LibreOffice and save it as .xlsx or CSV",
    b"%PDF": "a PDF: export the roster from the MIS as CSV or .xlsx instead",
}


def _rows(path: Path) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """The file's encoding (or kind) and its rows with their line numbers.

    A CSV file in UTF-8, UTF-16 or Windows-1252, or an Excel workbook (.xlsx); anything
    else is a RosterFileError saying what the file seems to be and what to do.
    """
    data = _read_bytes(path)
    if data.startswith(xlsxfile.ZIP_MAGIC):
        return xlsxfile.LABEL, xlsxfile.xlsx_rows(data)
    for magic, what in _NOT_ROSTERS.items():
        if data.startswith(magic):
            raise RosterFileError(f"the file is {what}")
    text, encoding = _decode(data)
    return encoding, _split(text)


def read_table(path: Path, *, required: tuple[str, ...], optional: tuple[str, ...]) -> Table:
    """Decode and split a roster file into records keyed by known column names."""
    encoding, all_rows = _rows(path)
    rows = (row for row in all_rows if not _is_blank(row[1]))
    first = next(rows, None)
    if first is None:
        raise RosterFileError("the file is empty (no header row)")
    columns = _columns(first[1], required=required, optional=optional)
    records = [
        Record(
            line,
            {name: (fields[i] if i < len(fields) else "") for name, i in columns.items()},
            _shape_problem(fields, len(first[1])),
        )
        for line, fields in rows
    ]
    return Table(encoding, records)


def count_rows(path: Path) -> int:
    """The number of non-blank data rows in a roster file (for a progress bar's total)."""
    _encoding, all_rows = _rows(path)
    rows = sum(1 for _line, fields in all_rows if not _is_blank(fields))
    return max(0, rows - 1)
