"""Pupil context columns and leavers in the pupil import (store.roster, store.pupil_context)."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from store import pupil_context
from store.crypto import Cipher, generate_key
from store.db import SessionFactory, transaction
from store.models import Pupil, PupilContext, PupilContextChange
from store.roster import RosterFileError, import_pupils
from tests.store.test_roster import PUPILS, pupils_of, workspace, write

CIPHER = Cipher(generate_key())
HEADER = (
    "upn,forename,surname,date_of_birth,year_group,registration_group,"
    "CP_Plan,CIN,LAC,Previously_LAC,SEN,Young_Carer,EAL,Social_Worker\n"
)
WITH_FLAGS = HEADER + (
    "A123456789012,Amelia,Stone,2015-09-01,4,4A,Y,No,TRUE,0,K,,yes,Jo Marsh-Quill\n"
    "B234567890123,Ben,Okafor,2016-03-14,3,3B,N,1,false,Yes,E,Y,N,\n"
    "C34567890123X,Chloé,Ng,2021-01-01,R,RA,,,,,,,,\n"
    "D45678901234A,Dev,Rao,2016-05-05,3,3B,Y,N,N,N,X,N,N,\n"
    "E56789012345B,Esme,Ward,2016-05-06,3,3B,maybe,N,N,N,N,N,N,\n"
)


async def context_of(factory: SessionFactory, ws: int, upn: str) -> pupil_context.Context:
    pupil = (await pupils_of(factory, ws))[upn]
    async with factory() as session:
        found = await pupil_context.contexts(
            session, workspace_id=ws, pupil_ids=[pupil.id], cipher=CIPHER
        )
    return found[pupil.id]


async def changes_of(factory: SessionFactory, ws: int, upn: str) -> list[str]:
    pupil = (await pupils_of(factory, ws))[upn]
    async with factory() as session:
        return [
            c.text for c in await pupil_context.history(session, pupil_id=pupil.id, cipher=CIPHER)
        ]


async def test_context_columns_are_imported_and_a_bad_value_is_reported_by_line(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    report = await import_pupils(
        factory, workspace_id=ws, path=write(tmp_path, WITH_FLAGS), cipher=CIPHER
    )
    assert report.created == 3 and report.context_changed == 2
    problems = {p.line: p.reason for p in report.errors}
    assert set(problems) == {5, 6}
    assert problems[5] == "SEN 'X' is not N, K or E (N: no SEN, K: SEN support, E: EHC plan)"
    assert problems[6].startswith("CP_Plan 'maybe' is not yes or no")
    assert "line 5: SEN 'X'" in report.summary()
    amelia = await context_of(factory, ws, "A123456789012")
    assert amelia == pupil_context.Context(
        cp_plan=True, lac=True, sen="K", eal=True, social_worker="Jo Marsh-Quill"
    )
    assert amelia.badges == ["CP plan", "Looked after (LAC)", "SEN support", "EAL"]
    ben = await context_of(factory, ws, "B234567890123")
    assert ben == pupil_context.Context(cin=True, previously_lac=True, sen="E", young_carer=True)
    assert (await context_of(factory, ws, "C34567890123X")).empty
    # The social worker's name is stored only encrypted.
    async with factory() as session:
        stored = list(await session.scalars(select(PupilContext.social_worker_ct)))
        logged = list(await session.scalars(select(PupilContextChange.value_ct)))
    assert not any(b"Marsh" in bytes(v) for v in stored + logged if v)
    assert "CP plan started" in await changes_of(factory, ws, "A123456789012")
    assert "Social worker changed: Jo Marsh-Quill" in await changes_of(factory, ws, "A123456789012")

    # Nothing lost: the good rows came in, and a later good file brings the others in.
    fixed = WITH_FLAGS.replace(",X,", ",N,").replace("maybe", "Y")
    again = await import_pupils(
        factory, workspace_id=ws, path=write(tmp_path, fixed), cipher=CIPHER
    )
    assert (again.created, again.errors, again.context_changed) == (2, [], 2)


async def test_a_context_change_on_reimport_is_dated_and_a_missing_column_keeps_values(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    await import_pupils(factory, workspace_id=ws, path=write(tmp_path, WITH_FLAGS), cipher=CIPHER)
    changed = WITH_FLAGS.replace(
        ",Y,No,TRUE,0,K,,yes,Jo Marsh-Quill", ",N,No,TRUE,0,K,,yes,Al Penn"
    )
    report = await import_pupils(
        factory, workspace_id=ws, path=write(tmp_path, changed), cipher=CIPHER
    )
    assert report.context_changed == 1 and report.unchanged == 3
    assert (await changes_of(factory, ws, "A123456789012"))[-2:] == [
        "CP plan ended",
        "Social worker changed: Al Penn",
    ]
    # A file without the context columns leaves them as they are.
    plain = (
        "upn,forename,surname,date_of_birth,year_group,registration_group\n"
        "A123456789012,Amelia,Stone,2015-09-01,4,4A\n"
        "B234567890123,Ben,Okafor,2016-03-14,3,3B\n"
        "C34567890123X,Chloé,Ng,2021-01-01,R,RA\n"
    )
    await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, plain))
    assert (await context_of(factory, ws, "A123456789012")).social_worker == "Al Penn"


async def test_pupils_without_a_data_key_import_nothing(
    factory: SessionFactory, tmp_path: Path
) -> None:
    """Names and dates of birth are stored only encrypted: no key, no import."""
    ws = await workspace(factory)
    for text in (WITH_FLAGS, PUPILS):
        with pytest.raises(RosterFileError, match="VIGIL_DATA_KEY"):
            await import_pupils(factory, workspace_id=ws, path=write(tmp_path, text))
    assert await pupils_of(factory, ws) == {}


async def test_pupils_missing_from_a_reimport_are_left_and_come_back(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, PUPILS))
    first_only = PUPILS.splitlines()[0] + "\n" + PUPILS.splitlines()[1] + "\n"
    partial = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, first_only), keep_missing=True
    )
    assert partial.left == 0
    assert all(p.left_on is None for p in (await pupils_of(factory, ws)).values())

    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, first_only)
    )
    assert report.left == 2 and "2 left" in report.summary()
    pupils = await pupils_of(factory, ws)
    assert pupils["A123456789012"].left_on is None
    assert pupils["B234567890123"].left_on is not None
    assert len(pupils) == 3  # their records stay
    assert (await changes_of(factory, ws, "B234567890123"))[-1].startswith("Left the school")

    back = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, PUPILS)
    )
    assert (back.left, back.rejoined) == (0, 2) and "2 back on the roster" in back.summary()
    assert all(p.left_on is None for p in (await pupils_of(factory, ws)).values())
    assert (await changes_of(factory, ws, "B234567890123"))[-1] == "Back on the school roster"


async def test_a_rejected_row_does_not_make_its_pupil_a_leaver(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, PUPILS))
    broken = PUPILS.replace("2015-09-01", "not a date")
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, broken)
    )
    assert report.left == 0 and [p.line for p in report.errors] == [2]
    async with transaction(factory) as session:
        left = await session.scalar(select(Pupil.left_on).where(Pupil.upn == "A123456789012"))
    assert left is None


async def test_context_columns_from_an_excel_workbook(
    factory: SessionFactory, tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["UPN", "Forename", "Surname", "Date of birth", "Year group",
                  "Registration group", "CP Plan", "LAC", "SEN", "Social Worker"])  # fmt: skip
    sheet.append(
        ["A123456789012", "Amelia", "Stone", "2015-09-01", 4, "4A", True, 1, "e", "Jo Ash"]
    )
    sheet.append(["B234567890123", "Ben", "Okafor", "2016-03-14", 3, "3B", False, 0, "X", None])
    path = tmp_path / "pupils.xlsx"
    book.save(path)
    ws = await workspace(factory)
    report = await import_pupils(factory, workspace_id=ws, path=path, cipher=CIPHER)
    assert [(p.line, p.reason.split(" is ")[0]) for p in report.errors] == [(3, "SEN 'X'")]
    assert await context_of(factory, ws, "A123456789012") == pupil_context.Context(
        cp_plan=True, lac=True, sen="E", social_worker="Jo Ash"
    )
