"""The `vigil` command: schema upgrade and roster import, as an IT technician runs them."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bot.cli import main
from store.crypto import generate_key
from store.db import create_engine
from store.migrate import current_revision, head_revision
from store.models import Pupil, Staff, Workspace
from testing.school import fictional_pupils, pupils_csv, staff_csv


def count(url: str, model: type) -> int:
    async def run() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return int(await connection.scalar(select(func.count()).select_from(model)) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIGIL_DATABASE_URL", db_url)
    monkeypatch.setenv("VIGIL_DATA_KEY", generate_key())  # pupils are stored encrypted
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return db_url


def test_db_upgrade_creates_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("VIGIL_DATABASE_URL", url)
    assert main(["--env-file", str(tmp_path / "none"), "db", "upgrade"]) == 0
    engine = create_engine(url)
    assert asyncio.run(current_revision(engine)) == head_revision()


def test_db_upgrade_creates_the_sqlite_database_readable_only_by_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIGIL_DATABASE_URL", "sqlite+aiosqlite:///./vigil.db")
    os.umask(0o022)  # the usual umask, which gave 0644
    assert main(["--env-file", str(tmp_path / "none"), "db", "upgrade"]) == 0
    files = sorted(tmp_path.glob("vigil.db*"))
    assert tmp_path / "vigil.db" in files
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files}
    assert set(modes.values()) == {"0o600"}, modes


def test_import_reports_bad_rows_by_line_and_keeps_good_ones(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = pupils_csv(fictional_pupils(5)).splitlines()
    rows.insert(3, "Z123,Ann,Smith,2016-02-31,3,3A,")  # line 4: bad UPN and date
    path = tmp_path / "pupils.csv"
    path.write_text("\n".join(rows) + "\n")
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 1
    out = capsys.readouterr().out
    assert "5 created" in out and "line 4:" in out
    assert "Ann" not in out and "Smith" not in out  # pupil names are never echoed
    assert count(env, Pupil) == 5
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 1
    assert "5 unchanged" in capsys.readouterr().out
    assert count(env, Pupil) == 5


def test_import_staff_without_slack_uses_the_only_workspace(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(staff_csv())
    pupils = tmp_path / "pupils.csv"
    pupils.write_text(pupils_csv(fictional_pupils(2)))
    assert main(["import", "pupils", str(pupils), "--team", "T0SCHOOL"]) == 0
    assert main(["import", "staff", str(path)]) == 0
    assert count(env, Staff) == 9
    out = capsys.readouterr().out
    assert "9 created" in out
    assert "9 members of staff are not linked to Slack" in out  # and what to do about it
    assert "`vigil serve` links them by email when it starts" in out


def test_missing_column_imports_nothing(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pupils.csv"
    path.write_text("upn,forename,surname\nZ00000000001B,A,B\n")
    assert main(["import", "pupils", str(path), "--team", "T0SCHOOL"]) == 1
    assert "nothing imported" in capsys.readouterr().err
    assert count(env, Pupil) == 0


def test_serve_without_secrets_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "VIGIL_DATA_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN" in err and "SLACK_SIGNING_SECRET" in err and "VIGIL_DATA_KEY" in err


def test_vigil_jobs_lists_the_scheduled_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vigil.toml").write_text("[nudges]\ncheck_every_minutes = 3\n")
    assert main(["jobs"]) == 0
    out = capsys.readouterr().out
    assert "outbox-delivery" in out and "overdue-referrals" in out and "every 3 minutes" in out
    assert "subject-access-deadlines" in out
    assert "08:00–18:00 Europe/London" in out


def test_a_named_config_file_that_is_missing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIGIL_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["jobs"]) == 2
    assert "VIGIL_CONFIG" in capsys.readouterr().err


def test_db_upgrade_with_a_role_postgresql_refuses_says_so_in_one_line(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = postgres_url.rsplit("/", 1)[0].replace("//postgres@", "//vigil_no_such_role@")
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"{server}/postgres")
    assert main(["--env-file", "/nonexistent", "db", "upgrade"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vigil: PostgreSQL at ") and len(err.splitlines()) == 1, err
    assert "refused role 'vigil_no_such_role'" in err


def test_vigil_version_says_which_vigil_this_is(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"vigil {version('vigil')}"


def test_env_file_is_read_after_the_command_as_well_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    env = tmp_path / "school.env"
    env.write_text(f"VIGIL_CONFIG={tmp_path / 'named-but-missing.toml'}\n")
    assert main(["jobs", "--env-file", str(env)]) == 2
    assert main(["--env-file", str(env), "jobs"]) == 2
    err = capsys.readouterr().err
    assert err.count("VIGIL_CONFIG names") == 2  # the file was read both ways


def test_the_readmes_example_rosters_import_without_a_rejected_row(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.paths import REPO

    readme = (REPO / "README.md").read_text()
    blocks = readme.split("```csv\n")[1:]
    staff, pupils = (block.split("```", 1)[0] for block in blocks[:2])
    assert staff.startswith("email,") and pupils.startswith("upn,")
    (tmp_path / "staff.csv").write_text(staff)
    (tmp_path / "pupils.csv").write_text(pupils)
    assert main(["import", "pupils", str(tmp_path / "pupils.csv"), "--team", "T0SCHOOL"]) == 0
    assert main(["import", "staff", str(tmp_path / "staff.csv"), "--team", "T0SCHOOL"]) == 0
    out = capsys.readouterr().out
    assert "pupils: 2 created" in out and "staff: 4 created" in out


def test_import_into_a_school_named_by_team_id_or_name(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def schools() -> None:
        engine = create_engine(env)
        try:
            async with engine.begin() as connection:
                for team, name in (
                    ("T0AAAAA", "Larkspur Primary"),
                    ("T0BBBBB", "Bluebell Academy"),
                ):
                    await connection.execute(
                        insert(Workspace).values(team_id=team, name=name, next_incident_number=1)
                    )
        finally:
            await engine.dispose()

    def pupils_of(team: str) -> int:
        async def run() -> int:
            engine = create_engine(env)
            try:
                async with engine.connect() as connection:
                    return int(
                        await connection.scalar(
                            select(func.count())
                            .select_from(Pupil)
                            .join(Workspace, Workspace.id == Pupil.workspace_id)
                            .where(Workspace.team_id == team)
                        )
                        or 0
                    )
            finally:
                await engine.dispose()

        return asyncio.run(run())

    asyncio.run(schools())
    path = tmp_path / "pupils.csv"
    path.write_text(pupils_csv(fictional_pupils(3)))
    assert main(["import", "pupils", str(path), "--school", "bluebell  ACADEMY"]) == 0
    assert (pupils_of("T0AAAAA"), pupils_of("T0BBBBB")) == (0, 3)
    assert main(["import", "pupils", str(path), "--school", "T0AAAAA"]) == 0
    assert (pupils_of("T0AAAAA"), pupils_of("T0BBBBB")) == (3, 3)
    staff = tmp_path / "staff.csv"
    staff.write_text(staff_csv())
    assert main(["import", "staff", str(staff), "--school", "Larkspur Primary"]) == 0
    assert main(["import", "staff", str(staff), "--school", "Nowhere High"]) == 2
    err = capsys.readouterr().err
    assert "no single school called 'Nowhere High'" in err
    assert "Bluebell Academy (T0BBBBB), Larkspur Primary (T0AAAAA)" in err
    assert count(env, Workspace) == 2  # --school never makes a school
