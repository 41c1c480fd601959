"""store.roster: staff and pupil CSV imports, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from store.db import SessionFactory, transaction
from store.models import Pupil, Staff, StaffClass
from store.pupils import roster, search_text
from store.roster import (
    NO_SLACK_ACCOUNT,
    ImportReport,
    RosterFileError,
    RowProblem,
    count_rows,
    import_pupils,
    import_staff,
)
from store.workspaces import ensure
from tests.support.concern_forms import CIPHER

PUPIL_HEADER = "upn,forename,surname,preferred_name,date_of_birth,year_group,registration_group\n"
PUPILS = PUPIL_HEADER + (
    "A123456789012,Amelia,Stone,Millie,2015-09-01,Year 4,4A\n"
    "b234567890123,Ben,Okafor,,14/03/2016,3,3B\n"
    "C34567890123X,Chloé,Ng,,01/01/2021,Reception,RA\n"
)
STAFF_HEADER = "email,name,roles,classes,slack_user_id\n"
STAFF = STAFF_HEADER + (
    "dsl@school.example,Dana Lewis,dsl;slt,,U0DSL\n"
    "Teacher@School.example,Tom Reed,teacher,4A;4B,U0TEACH\n"
    "office@school.example,Olive Hart,,,\n"
)


def write(tmp_path: Path, text: str, *, name: str = "roster.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def workspace(factory: SessionFactory, team_id: str = "T001") -> int:
    async with transaction(factory) as session:
        return (await ensure(session, team_id=team_id, name=f"School {team_id}")).id


async def pupils_of(factory: SessionFactory, workspace_id: int) -> dict[str, Pupil]:
    async with factory() as session:
        rows = await session.scalars(select(Pupil).where(Pupil.workspace_id == workspace_id))
        return {p.upn: p for p in rows.all()}


async def staff_of(factory: SessionFactory, workspace_id: int) -> dict[str, Staff]:
    async with factory() as session:
        rows = await session.scalars(
            select(Staff)
            .where(Staff.workspace_id == workspace_id)
            .options(selectinload(Staff.classes))
        )
        return {s.email: s for s in rows.all()}


async def searchable(factory: SessionFactory, workspace_id: int) -> dict[str, str]:
    """What the in-memory roster finds each pupil by, by UPN (`store.pupils.roster`)."""
    async with factory() as session:
        found = await roster(session, workspace_id=workspace_id)
    return {p.upn: p.text for p in found.pupils}


def classes(staff: Staff) -> set[str]:
    return {c.registration_group for c in staff.classes}


def lines(problems: list[RowProblem]) -> list[int]:
    return [p.line for p in problems]


# ---------------------------------------------------------------- pupils


async def test_pupils_import(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, PUPILS)
    )
    assert (report.kind, report.created, report.updated, report.unchanged) == ("pupils", 3, 0, 0)
    assert report.errors == [] and report.encoding == "utf-8"
    pupils = await pupils_of(factory, ws)
    assert set(pupils) == {"A123456789012", "B234567890123", "C34567890123X"}
    amelia = pupils["A123456789012"]
    assert (amelia.forename, amelia.surname, amelia.preferred_name) == ("Amelia", "Stone", "Millie")
    assert amelia.date_of_birth == dt.date(2015, 9, 1)
    assert (amelia.year_group, amelia.registration_group) == ("Year 4", "4A")
    texts = await searchable(factory, ws)
    assert texts["A123456789012"] == search_text(
        upn="A123456789012", forename="Amelia", surname="Stone", preferred_name="Millie"
    )
    ben = pupils["B234567890123"]
    assert ben.preferred_name is None
    assert ben.date_of_birth == dt.date(2016, 3, 14)
    assert pupils["C34567890123X"].year_group == "Reception"
    assert " chloe " in texts["C34567890123X"]


async def test_pupils_reimport_is_idempotent(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    path = write(tmp_path, PUPILS)
    await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=path)
    before = {upn: p.updated_at for upn, p in (await pupils_of(factory, ws)).items()}
    report = await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=path)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    after = await pupils_of(factory, ws)
    assert {upn: p.updated_at for upn, p in after.items()} == before
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Pupil)) == 3


async def test_pupils_update_on_change(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, PUPILS))
    changed = PUPILS.replace("Amelia,Stone,Millie", "Amelia,Stone-Baker,").replace(",3,3B", ",4,4B")
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, changed)
    )
    assert (report.created, report.updated, report.unchanged) == (0, 2, 1)
    pupils = await pupils_of(factory, ws)
    amelia = pupils["A123456789012"]
    assert (amelia.surname, amelia.preferred_name) == ("Stone-Baker", None)
    text = (await searchable(factory, ws))["A123456789012"]
    assert " stone-baker " in text and "millie" not in text
    assert (pupils["B234567890123"].year_group, pupils["B234567890123"].registration_group) == (
        "4",
        "4B",
    )


async def test_headers_case_insensitive_extra_columns_and_bom(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    text = (
        " UPN ,Forename,SURNAME, Date_Of_Birth ,Year_Group,Registration_Group,Ethnicity,Notes\n"
        "A123456789012,Amelia,Stone,2015-09-01,Year 4,4A,unused,x\n"
    )
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, text, encoding="utf-8-sig")
    )
    assert (report.created, report.errors, report.encoding) == (1, [], "utf-8")
    assert (await pupils_of(factory, ws))["A123456789012"].preferred_name is None


async def test_missing_required_column_stores_nothing(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    text = "upn,forename,surname,year_group,registration_group\nA123456789012,Amelia,Stone,4,4A\n"
    with pytest.raises(RosterFileError, match="date_of_birth") as caught:
        await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, text))
    assert "Amelia" not in str(caught.value)
    assert await pupils_of(factory, ws) == {}
    with pytest.raises(RosterFileError, match="roles"):
        await import_staff(
            factory, workspace_id=ws, path=write(tmp_path, "email,name,classes\na@b.org,A,\n")
        )
    assert await staff_of(factory, ws) == {}


async def test_empty_file_is_a_file_error(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    with pytest.raises(RosterFileError, match="empty"):
        await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, "\n\n"))
    with pytest.raises(RosterFileError, match="cannot read"):
        await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=tmp_path / "missing.csv")


async def test_bad_rows_reported_by_file_line_good_rows_kept(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    text = (
        "upn,forename,surname,date_of_birth,year_group,registration_group,notes\n"  # 1
        'A123456789012,Amelia,Stone,2015-09-01,Year 4,4A,"allergies:\n'  # 2
        'nuts, eggs"\n'  # 3
        "B234567890123,Ben,Okafor,31/02/2015,Year 4,4A,\n"  # 4
        ",,,,,,\n"  # 5: entirely empty, skipped silently
        "\n"  # 6: blank
        "123,Cara,Ng,2015-01-01,Year 4,4A,\n"  # 7
        "D456789012345,Dev,Shah,2015-01-01,Year 4,4A,\n"  # 8
        "E567890123456,,Patel,01/01/2099,,4A,\n"  # 9
        "d456789012345,Dev,Shah,2015-01-01,Year 4,4A,\n"  # 10: duplicate of line 8
        "F678901234567,Finn,Moss,2015-13-01,Year 4,4A,\n"  # 11
    )
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, text)
    )
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert lines(report.errors) == [4, 7, 9, 10, 11]
    reasons = {p.line: p.reason for p in report.errors}
    assert reasons[4] == "date_of_birth '31/02/2015' is not a date (use YYYY-MM-DD or DD/MM/YYYY)"
    assert reasons[7].startswith("upn '123' is not a UPN")
    assert "forename is empty" in reasons[9]
    assert "date_of_birth '01/01/2099' is in the future" in reasons[9]
    assert "year_group is empty" in reasons[9]
    assert reasons[10] == "upn D456789012345 is a duplicate of line 8"
    assert "2015-13-01" in reasons[11]
    assert set(await pupils_of(factory, ws)) == {"A123456789012", "D456789012345"}
    summary = report.summary()
    assert summary.splitlines()[0] == "pupils: 2 created, 0 updated, 0 unchanged; 5 rows rejected"
    assert "  line 4: date_of_birth '31/02/2015' is not a date" in summary
    for name in ("Amelia", "Ben", "Okafor", "Cara", "Dev", "Shah", "Patel", "Finn", "Moss"):
        assert name not in summary


async def test_bad_upns_and_names_never_echoed(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    long_name = "Bartholomew" * 10
    text = PUPIL_HEADER + (
        "A12345678901,Amy,Ash,,2015-01-01,1,1A\n"  # 12 characters
        "112345678901A,Amy,Ash,,2015-01-01,1,1A\n"  # starts with a digit
        "A1234567890AB,Amy,Ash,,2015-01-01,1,1A\n"  # letter in the digits
        f"A123456789012,{long_name},Ash,,2015-01-01,1,1A\n"
        "A123456789013,Amy,Ash,,1850-01-01,1,1A\n"
        "A12345678901B,Amy,Ash,,2015-1-2,1,1A\n"  # temporary UPN; single-digit ISO parts
    )
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, text)
    )
    assert lines(report.errors) == [2, 3, 4, 5, 6]
    assert all("is not a UPN" in p.reason for p in report.errors[:3])
    assert report.errors[3].reason == "forename is longer than 100 characters"
    assert "not a plausible date of birth" in report.errors[4].reason
    assert long_name not in report.summary() and "Amy" not in report.summary()
    pupil = (await pupils_of(factory, ws))["A12345678901B"]
    assert pupil.date_of_birth == dt.date(2015, 1, 2)


async def test_cp1252_file(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    text = PUPIL_HEADER + "A123456789012,Zoë,Brontë,Renée,2015-09-01,Year 4,4A\n"
    path = write(tmp_path, text, encoding="cp1252")
    report = await import_pupils(factory, cipher=CIPHER, workspace_id=ws, path=path)
    assert (report.created, report.encoding) == (1, "cp1252")
    assert "cp1252" in report.summary()
    pupil = (await pupils_of(factory, ws))["A123456789012"]
    assert (pupil.forename, pupil.surname, pupil.preferred_name) == ("Zoë", "Brontë", "Renée")
    assert " zoe " in (await searchable(factory, ws))["A123456789012"]


async def test_same_upn_in_two_workspaces(factory: SessionFactory, tmp_path: Path) -> None:
    first, second = await workspace(factory, "T001"), await workspace(factory, "T002")
    path = write(tmp_path, PUPILS)
    await import_pupils(factory, cipher=CIPHER, workspace_id=first, path=path)
    report = await import_pupils(factory, cipher=CIPHER, workspace_id=second, path=path)
    assert report.created == 3
    a, b = await pupils_of(factory, first), await pupils_of(factory, second)
    assert set(a) == set(b)
    assert a["A123456789012"].id != b["A123456789012"].id
    changed = PUPILS.replace("Year 4,4A", "Year 5,5A")
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=second, path=write(tmp_path, changed)
    )
    assert report.updated == 1
    assert (await pupils_of(factory, first))["A123456789012"].year_group == "Year 4"


async def test_unknown_workspace(factory: SessionFactory, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no workspace"):
        await import_pupils(factory, cipher=CIPHER, workspace_id=999, path=write(tmp_path, PUPILS))


async def test_progress_adds_up_to_count_rows(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    rows = [f"A{n:011d}{n % 10},Pupil,Number,,2015-01-01,1,1A" for n in range(2500)]
    rows[7] = "bad,Pupil,Number,,2015-01-01,1,1A"
    path = write(tmp_path, PUPIL_HEADER + "\n".join(rows) + "\n\n")
    assert count_rows(path) == 2500
    calls: list[int] = []
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=path, progress=calls.append
    )
    assert report.created == 2499 and lines(report.errors) == [9]
    assert sum(calls) == 2500 and len(calls) > 1 and all(n > 0 for n in calls)
    calls.clear()
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=path, progress=calls.append
    )
    assert (report.unchanged, sum(calls)) == (2499, 2500)


def test_summary_format() -> None:
    report = ImportReport(
        kind="staff",
        created=1,
        deactivated=2,
        errors=[RowProblem(3, "email is empty")],
        warnings=[RowProblem(2, NO_SLACK_ACCOUNT)],
    )
    assert report.summary().splitlines() == [
        "staff: 1 created, 0 updated, 0 unchanged, 2 deactivated; 1 row rejected, 1 warning",
        "  line 3: email is empty",
        f"  line 2: warning: {NO_SLACK_ACCOUNT}",
    ]


# ---------------------------------------------------------------- staff


async def test_staff_import(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, STAFF))
    assert (report.kind, report.created, report.errors, report.warnings) == ("staff", 3, [], [])
    staff = await staff_of(factory, ws)
    assert set(staff) == {"dsl@school.example", "teacher@school.example", "office@school.example"}
    dsl, teacher, office = (staff[f"{n}@school.example"] for n in ("dsl", "teacher", "office"))
    assert (dsl.name, dsl.role_set, dsl.slack_user_id) == ("Dana Lewis", {"dsl", "slt"}, "U0DSL")
    assert teacher.roles == "teacher" and classes(teacher) == {"4A", "4B"}
    assert all(c.workspace_id == ws for c in teacher.classes)
    assert (office.roles, office.slack_user_id, classes(office)) == ("staff", None, set())
    assert all(s.active for s in staff.values())


async def test_staff_reimport_idempotent_and_updates(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    path = write(tmp_path, STAFF)
    await import_staff(factory, workspace_id=ws, path=path)
    report = await import_staff(factory, workspace_id=ws, path=path)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    changed = STAFF.replace("teacher,4A;4B", "teacher;pastoral,4B;5C").replace(
        "Olive Hart", "Olive Hart-Smith"
    )
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, changed))
    assert (report.created, report.updated, report.unchanged) == (0, 2, 1)
    staff = await staff_of(factory, ws)
    assert classes(staff["teacher@school.example"]) == {"4B", "5C"}
    assert staff["teacher@school.example"].role_set == {"teacher", "pastoral"}
    assert staff["office@school.example"].name == "Olive Hart-Smith"
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Staff)) == 3
        assert await session.scalar(select(func.count()).select_from(StaffClass)) == 2


async def test_staff_bad_rows(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    text = STAFF_HEADER + (
        "not-an-email,Nobody,,,\n"  # 2
        "a@school.example,,teacher,,\n"  # 3
        "b@school.example,Bea,teacher;wizard,,\n"  # 4
        "c@school.example,Cal,teacher,,\n"  # 5
        "C@School.Example,Cal again,teacher,,\n"  # 6
        "d@school.example,Dee,,,not-an-id\n"  # 7
        f"e@school.example,Eve,,{'X' * 51},\n"  # 8
    )
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, text))
    assert report.created == 1
    reasons = {p.line: p.reason for p in report.errors}
    assert sorted(reasons) == [2, 3, 4, 6, 7, 8]
    assert reasons[2] == "email 'not-an-email' is not an email address"
    assert reasons[3] == "name is empty"
    assert reasons[4] == (
        "unknown role 'wizard' (allowed: keyholder, head, dsl, slt, pastoral, senco, teacher, "
        "staff, chair, trust_lead)"
    )
    assert reasons[6] == "email c@school.example is a duplicate of line 5"
    assert "slack_user_id 'not-an-id'" in reasons[7]
    assert "longer than 50 characters" in reasons[8]
    assert set(await staff_of(factory, ws)) == {"c@school.example"}


async def test_lookup_only_for_rows_without_slack_id(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    directory = {"office@school.example": "U0OFFICE"}
    asked: list[str] = []

    async def lookup(email: str) -> str | None:
        asked.append(email)
        return directory.get(email)

    text = STAFF + "new@school.example,Nia New,teacher,,\n"
    report = await import_staff(
        factory, workspace_id=ws, path=write(tmp_path, text), lookup_slack_id=lookup
    )
    assert sorted(asked) == ["new@school.example", "office@school.example"]
    assert report.created == 4 and report.errors == []
    assert report.warnings == [RowProblem(5, NO_SLACK_ACCOUNT)]
    staff = await staff_of(factory, ws)
    assert staff["office@school.example"].slack_user_id == "U0OFFICE"
    assert staff["new@school.example"].slack_user_id is None
    assert staff["teacher@school.example"].slack_user_id == "U0TEACH"


async def test_existing_slack_id_kept_without_lookup(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    await import_staff(factory, workspace_id=ws, path=write(tmp_path, STAFF))
    without_ids = STAFF.replace(",U0DSL", ",").replace(",U0TEACH", ",")
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, without_ids))
    assert (report.updated, report.unchanged) == (0, 3)
    staff = await staff_of(factory, ws)
    assert staff["dsl@school.example"].slack_user_id == "U0DSL"
    assert staff["teacher@school.example"].slack_user_id == "U0TEACH"


async def test_staff_without_slack_id_column(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    text = "Email,Name,Roles,Classes\nkeys@school.example,Kay,keyholder;head,\n"

    async def lookup(email: str) -> str | None:
        return "U0KAY"

    report = await import_staff(
        factory, workspace_id=ws, path=write(tmp_path, text), lookup_slack_id=lookup
    )
    assert report.created == 1
    kay = (await staff_of(factory, ws))["keys@school.example"]
    assert (kay.roles, kay.slack_user_id) == ("keyholder;head", "U0KAY")


async def test_deactivate_missing(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    await import_staff(factory, workspace_id=ws, path=write(tmp_path, STAFF))
    fewer = STAFF_HEADER + "dsl@school.example,Dana Lewis,dsl;slt,,U0DSL\n"
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, fewer))
    assert (report.deactivated, report.unchanged) == (0, 1)
    assert all(s.active for s in (await staff_of(factory, ws)).values())

    report = await import_staff(
        factory, workspace_id=ws, path=write(tmp_path, fewer), deactivate_missing=True
    )
    assert (report.deactivated, report.unchanged) == (2, 1)
    assert "2 deactivated" in report.summary()
    active = {e: s.active for e, s in (await staff_of(factory, ws)).items()}
    assert active == {
        "dsl@school.example": True,
        "teacher@school.example": False,
        "office@school.example": False,
    }

    report = await import_staff(
        factory, workspace_id=ws, path=write(tmp_path, STAFF), deactivate_missing=True
    )
    assert (report.updated, report.unchanged, report.deactivated) == (2, 1, 0)
    assert all(s.active for s in (await staff_of(factory, ws)).values())


async def test_deactivate_missing_spares_rejected_rows(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    await import_staff(factory, workspace_id=ws, path=write(tmp_path, STAFF))
    text = STAFF.replace("Tom Reed,teacher", "Tom Reed,wizard").replace(
        "Olive Hart,,,", "Hart, Olive,staff,,U0OFF"
    )
    report = await import_staff(
        factory, workspace_id=ws, path=write(tmp_path, text), deactivate_missing=True
    )
    assert (lines(report.errors), report.deactivated) == ([3, 4], 0)
    assert "the row has 6 fields but the header has 5" in report.errors[1].reason
    assert all(s.active for s in (await staff_of(factory, ws)).values())
    with pytest.raises(RosterFileError, match="refusing"):
        await import_staff(
            factory, workspace_id=ws, path=write(tmp_path, STAFF_HEADER), deactivate_missing=True
        )
    assert all(s.active for s in (await staff_of(factory, ws)).values())


async def test_slack_id_conflicts(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    await import_staff(factory, workspace_id=ws, path=write(tmp_path, STAFF))
    swapped = (
        STAFF.replace(",U0DSL", ",TMP").replace(",U0TEACH", ",U0DSL").replace(",TMP", ",U0TEACH")
    )
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, swapped))
    assert (report.updated, report.errors) == (2, [])
    staff = await staff_of(factory, ws)
    assert staff["dsl@school.example"].slack_user_id == "U0TEACH"
    assert staff["teacher@school.example"].slack_user_id == "U0DSL"

    # Someone new claiming a Slack id another member of staff keeps is rejected.
    taken = STAFF_HEADER + "new@school.example,Nia New,,,U0DSL\n"
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, taken))
    assert report.errors == [
        RowProblem(2, "slack_user_id U0DSL already belongs to teacher@school.example")
    ]
    # ... unless that person is leaving (deactivate_missing): the Slack user moves.
    moved = swapped.replace("Teacher@School.example", "t.reed@school.example")
    report = await import_staff(
        factory, workspace_id=ws, path=write(tmp_path, moved), deactivate_missing=True
    )
    assert (report.created, report.deactivated, report.errors) == (1, 1, [])
    assert "moved here from teacher@school.example" in report.warnings[0].reason
    staff = await staff_of(factory, ws)
    assert staff["t.reed@school.example"].slack_user_id == "U0DSL"
    assert staff["teacher@school.example"].slack_user_id is None
    assert not staff["teacher@school.example"].active


async def test_slack_id_twice_in_file(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)
    text = STAFF_HEADER + "a@school.example,A,,,U0SAME\nb@school.example,B,,,U0SAME\n"
    report = await import_staff(factory, workspace_id=ws, path=write(tmp_path, text))
    assert report.created == 1
    assert report.errors == [RowProblem(3, "slack_user_id U0SAME is already given to line 2")]


async def test_multi_line_bad_row_reported_at_its_first_line(
    factory: SessionFactory, tmp_path: Path
) -> None:
    ws = await workspace(factory)
    text = PUPIL_HEADER + (
        "A123456789012,Amelia,Stone,,2015-09-01,Year 4,4A\n"  # 2
        'B234567890123,"Ben\nBen",Okafor,,2015-99-01,Year 4,4A\n'  # 3-4
        "C34567890123X,Chlo,Ng,,bad,Reception,RA\n"  # 5
    )
    report = await import_pupils(
        factory, cipher=CIPHER, workspace_id=ws, path=write(tmp_path, text)
    )
    assert lines(report.errors) == [3, 5]


async def test_failing_lookup_stores_nothing(factory: SessionFactory, tmp_path: Path) -> None:
    ws = await workspace(factory)

    async def lookup(email: str) -> str | None:
        raise RuntimeError("Slack is down")

    with pytest.raises(RuntimeError, match="Slack is down"):
        await import_staff(
            factory, workspace_id=ws, path=write(tmp_path, STAFF), lookup_slack_id=lookup
        )
    assert await staff_of(factory, ws) == {}
