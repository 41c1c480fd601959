"""Property-based tests (hypothesis): arbitrary roster files through the CSV importers, on
SQLite and PostgreSQL.

The importers raise nothing but `RosterFileError`, report every bad row at the line it
starts on, store every good row exactly as given (after the documented cleaning) and no
bad one, and a second import of the same file changes nothing.

The strategies are in tests/support/roster_files.py and tests/support/strategies.py.
The tests are synchronous `@given` tests that drive the async store through one event
loop per test (`Db`); every example works in a workspace of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from store import roster
from store.db import SessionFactory
from store.models import Pupil, Staff
from store.pupils import roster as pupil_roster
from store.pupils import search_text
from store.roster import ImportReport, RosterFileError, count_rows, import_pupils, import_staff
from tests.support.concern_forms import CIPHER
from tests.support.roster_files import (
    STAFF_COLUMNS,
    RosterFile,
    any_files,
    line_breaks,
    pupil_files,
    staff_files,
)
from tests.support.strategies import DB_SETTINGS, Db, csv_text, new_workspace


async def pupil_snapshot(factory: SessionFactory, workspace_id: int) -> dict[str, dict[str, Any]]:
    async with factory() as session:
        found = await session.scalars(select(Pupil).where(Pupil.workspace_id == workspace_id))
        texts = {
            p.id: p.text for p in (await pupil_roster(session, workspace_id=workspace_id)).pupils
        }
        return {
            p.upn: {
                "id": p.id,
                "upn": p.upn,
                "forename": p.forename,
                "surname": p.surname,
                "preferred_name": p.preferred_name,
                "date_of_birth": p.date_of_birth,
                "year_group": p.year_group,
                "registration_group": p.registration_group,
                "search_text": texts[p.id],
                "updated_at": p.updated_at,
            }
            for p in found.all()
        }


async def staff_snapshot(factory: SessionFactory, workspace_id: int) -> dict[str, dict[str, Any]]:
    async with factory() as session:
        found = await session.scalars(
            select(Staff)
            .where(Staff.workspace_id == workspace_id)
            .options(selectinload(Staff.classes))
        )
        return {
            s.email: {
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "roles": s.roles,
                "classes": {c.registration_group for c in s.classes},
                "slack_user_id": s.slack_user_id,
                "active": s.active,
                "updated_at": s.updated_at,
            }
            for s in found.all()
        }


Importer = Callable[[SessionFactory, int, Path], Coroutine[Any, Any, ImportReport]]


async def _import_pupils(factory: SessionFactory, workspace_id: int, path: Path) -> ImportReport:
    return await import_pupils(factory, workspace_id=workspace_id, path=path, cipher=CIPHER)


async def _import_staff(factory: SessionFactory, workspace_id: int, path: Path) -> ImportReport:
    return await import_staff(factory, workspace_id=workspace_id, path=path)


def check_import(
    db: Db,
    path: Path,
    file: RosterFile,
    importer: Importer,
    snapshot: Callable[[SessionFactory, int], Coroutine[Any, Any, dict[str, dict[str, Any]]]],
) -> dict[str, dict[str, Any]]:
    """Import `file` twice into a new workspace; check the report and what was stored
    against how the rows were built. Returns what was stored."""
    path.write_bytes(file.data)
    workspace_id = db.run(new_workspace(db.factory, db.team()))
    # Anything raised here (a database error on a NUL, say) fails the test.
    report = db.run(importer(db.factory, workspace_id, path))
    good = [r for r in file.rows if r.expected is not None]
    bad = [r for r in file.rows if r.expected is None]
    event(f"{'some' if good else 'no'} good rows, {'some' if bad else 'no'} bad rows")
    assert report.encoding == ("utf-16" if file.encoding == "utf-16" else "utf-8")
    # Every rejected row is reported once, at the line it starts on; no good row is.
    assert [p.line for p in report.errors] == [r.line for r in bad], report.summary()
    assert all(1 < p.line <= file.lines for p in report.errors)
    assert (report.created, report.updated, report.unchanged) == (len(good), 0, 0)
    assert report.created + report.rejected == count_rows(path)
    stored = db.run(snapshot(db.factory, workspace_id))
    # Exactly the good rows are stored, each exactly as given (after documented cleaning).
    assert set(stored) == {r.key for r in good}
    for row in good:
        assert row.expected is not None
        kept = {k: v for k, v in stored[row.key].items() if k in row.expected}
        assert kept == row.expected, (row.line, row.cells)
    # The same file again changes nothing and reports the same rows.
    again = db.run(importer(db.factory, workspace_id, path))
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(good))
    assert again.errors == report.errors
    assert db.run(snapshot(db.factory, workspace_id)) == stored
    return stored


@DB_SETTINGS
@given(file=pupil_files())
def test_pupil_import_keeps_good_rows_exactly_and_reports_bad_ones(
    db: Db, tmp_path: Path, file: RosterFile
) -> None:
    stored = check_import(db, tmp_path / "pupils.csv", file, _import_pupils, pupil_snapshot)
    for values in stored.values():  # the search index is built from exactly those names
        names = {k: values[k] for k in ("upn", "forename", "surname", "preferred_name")}
        assert values["search_text"] == search_text(**names)


@DB_SETTINGS
@given(file=staff_files())
def test_staff_import_keeps_good_rows_exactly_and_reports_bad_ones(
    db: Db, tmp_path: Path, file: RosterFile
) -> None:
    stored = check_import(db, tmp_path / "staff.csv", file, _import_staff, staff_snapshot)
    assert all(values["active"] for values in stored.values())


@pytest.mark.parametrize(
    ("kind", "bad_row"),
    [
        ("staff", ["nul\x00@school.example", "Ann Lee", "teacher", "4B"]),
        ("staff", ["ann@school.example", "Ann Lee", "teacher", "4B;4\x00C"]),
        ("staff", ["ann@school.example", "Ann\x00Lee", "teacher", "4B"]),
        ("pupils", ["A123456789012", "Ann\x00", "Lee", "2016-01-01", "4", "4B"]),
        ("pupils", ["A123456789012", "Ann", "Lee", "2016-01-01", "4", "4\x00B"]),
    ],
    ids=["staff-email", "staff-class", "staff-name", "pupil-name", "pupil-class"],
)
def test_a_nul_anywhere_rejects_its_row_on_every_database(
    db: Db, tmp_path: Path, kind: str, bad_row: list[str]
) -> None:
    """PostgreSQL text cannot hold a NUL: the row is reported, the file's others kept."""
    if kind == "staff":
        header, good = list(roster.STAFF_REQUIRED), ["bo@school.example", "Bo Ray", "", "3A"]
        importer, snapshot = _import_staff, staff_snapshot
    else:
        header, good = list(roster.PUPIL_REQUIRED), ["B123456789012", "Bo", "Ray", "2016-02-02"]
        good += ["3", "3A"]
        importer, snapshot = _import_pupils, pupil_snapshot
    path = tmp_path / "roster.csv"
    path.write_text(csv_text([header, bad_row, good]), encoding="utf-8")
    workspace_id = db.run(new_workspace(db.factory, db.team()))
    report = db.run(importer(db.factory, workspace_id, path))
    assert [p.line for p in report.errors] == [2]
    assert "control character" in report.errors[0].reason
    assert report.created == 1
    assert set(db.run(snapshot(db.factory, workspace_id))) == {good[0]}  # stored key
    assert "\x00" not in report.summary()  # nothing of the value is echoed


@DB_SETTINGS
@given(data=st.data(), kind=st.sampled_from(["pupils", "staff"]))
def test_any_file_gives_a_report_or_a_file_error(
    db: Db, tmp_path: Path, data: st.DataObject, kind: str
) -> None:
    columns = roster.PUPIL_REQUIRED if kind == "pupils" else STAFF_COLUMNS
    importer, snapshot = (
        (_import_pupils, pupil_snapshot) if kind == "pupils" else (_import_staff, staff_snapshot)
    )
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(data.draw(any_files(columns)))
    workspace_id = db.run(new_workspace(db.factory, db.team()))
    try:
        report = db.run(importer(db.factory, workspace_id, path))
    except RosterFileError as error:
        assert str(error)  # says why
        assert db.run(snapshot(db.factory, workspace_id)) == {}
        return
    text = path.read_bytes().decode(report.encoding.replace("utf-8", "utf-8-sig"))
    lines = line_breaks(text) + 1
    # Every data row is accounted for exactly once: stored or reported at a real line.
    assert report.created + report.rejected == count_rows(path)
    assert len({p.line for p in report.errors}) == report.rejected
    assert all(1 < p.line <= lines for p in report.errors), report.summary()
    stored = db.run(snapshot(db.factory, workspace_id))
    assert len(stored) == report.created
    again = db.run(importer(db.factory, workspace_id, path))
    assert (again.created, again.updated, again.unchanged) == (0, 0, report.created)
    assert db.run(snapshot(db.factory, workspace_id)) == stored
