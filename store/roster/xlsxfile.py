"""Reading a roster exported as an Excel workbook (.xlsx), as MIS exports often are.

The first worksheet is read as a table: its first non-blank row is the header. Cells
become the text a CSV export would hold: dates as `YYYY-MM-DD`, whole numbers without
`.0`, empty cells as "".
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from store.roster.report import RosterFileError

ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx is a ZIP archive
LABEL = "an Excel workbook (.xlsx)"


def cell_text(value: object) -> str:
    """A cell's value as the text a CSV export of it would hold."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    """Each row of the first worksheet as text, with its row number (the header is 1)."""
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterFileError(
            "the file is a ZIP archive but not an Excel workbook (.xlsx) Vigil can read; "
            "export the roster as .xlsx or CSV"
        ) from exc
    try:
        if not workbook.worksheets:
            raise RosterFileError("the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [cell_text(value) for value in row]
    finally:
        workbook.close()
