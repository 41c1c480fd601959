"""`vigil import` with the files an MIS really gives: Excel workbooks, and files that are
not a roster at all. A workbook is read; anything else is one clear line, nothing stored."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.cli import main
from store import keyring
from store.crypto import Cipher, generate_key
from store.db import create_engine, session_factory
from store.models import Pupil, Staff
from testing.school import STAFF, fictional_pupils, pupils_csv, staff_csv


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIGIL_DATABASE_URL", db_url)
    monkeypatch.setenv("VIGIL_DATA_KEY", generate_key())  # pupils are stored encrypted
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return db_url


def workbook_of(csv_text: str, path: Path, *, typed: bool = False) -> Path:
    """The CSV's rows as the first sheet of an .xlsx; `typed` stores dates and whole
    numbers as Excel does (real dates, numbers), not as text."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in csv.reader(io.StringIO(csv_text)):
        cells: list[object] = list(row)
        if typed:
            cells = [_typed(value) for value in row]
        sheet.append(cells)
    book.save(path)
    return path


def _typed(value: str) -> object:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    return int(value) if value.isdigit() and len(value) < 4 else value


def pupils_in(url: str) -> list[Pupil]:
    async def run() -> list[Pupil]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                cipher = Cipher(os.environ["VIGIL_DATA_KEY"])  # what the import sealed with
                await keyring.load_data_keys(session, cipher, create=False)
                found = list((await session.scalars(select(Pupil))).all())
                return sorted(found, key=lambda p: p.details.upn)  # (opened while loaded)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def staff_count(url: str) -> int:
    async def run() -> int:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return len((await session.scalars(select(Staff))).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_pupils_exported_as_an_excel_workbook_with_real_dates_are_imported(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pupils = fictional_pupils(8)
    path = workbook_of(pupils_csv(pupils), tmp_path / "pupils.xlsx", typed=True)
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 0
    out = capsys.readouterr().out
    assert "8 created" in out and "0 rows rejected" in out and "Excel workbook" in out
    stored = pupils_in(env)
    assert [(p.upn, p.date_of_birth, p.year_group) for p in stored] == [
        (p.upn, p.date_of_birth, p.year_group) for p in sorted(pupils, key=lambda p: p.upn)
    ]


def test_staff_exported_as_an_excel_workbook_are_imported(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workbook_of(staff_csv(), tmp_path / "staff.xlsx")
    assert main(["import", "staff", str(path), "--team", "T0SCHOOL"]) == 0
    assert f"{len(STAFF)} created" in capsys.readouterr().out
    assert staff_count(env) == len(STAFF)


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        (
            "pupils.csv",
            b"upn,forename,surname\n" + bytes([0x81, 0x8D, 0x8F, 0x90]) + b"\n",
            "neither UTF-8 nor Windows-1252",
        ),
        (
            "pupils.xls",
            bytes.fromhex("d0cf11e0a1b11ae1") + bytes(600),
            "old Excel workbook (.xls)",
        ),
        ("pupils.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF"),
        ("pupils.bin", bytes(range(256)) * 4, "neither UTF-8 nor Windows-1252"),
        ("pupils.zip", b"PK\x03\x04" + bytes(100), "not an Excel workbook"),
    ],
    ids=["cp1252-undefined-bytes", "old-xls", "pdf", "binary", "other-zip"],
)
def test_a_file_that_is_not_a_roster_is_one_clear_line_and_nothing_is_stored(
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    said: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err and "nothing imported" in err, err
    assert pupils_in(env) == []


def test_a_csv_still_imports_as_before(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pupils.csv"
    path.write_text(pupils_csv(fictional_pupils(3)), encoding="cp1252")
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 0
    assert "3 created" in capsys.readouterr().out
