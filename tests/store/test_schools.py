"""Each school's configuration (`store.schools`): a file per school beside `vigil.toml`,
its settings page on top, resolved per workspace; the scheduled checks per school."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import load_catalogue, load_school, load_schools
from bot.settings import ConfigError, load_settings
from scheduler.jobs import each_school
from store import schools, workspaces
from store.alert_rules import alert_recipients
from store.db import SessionFactory, transaction
from store.models import SchoolSettings
from store.school_config import SchoolConfigError

BASE = """
[working_time]
timezone = "Europe/London"
day_starts = "08:00"
day_ends = "17:00"

[[agencies]]
name = "Police"
respond_within = "1 working day"
"""

# Larkspur: nudges by the head for behaviour, police answer in 4 working hours, closed
# on 2027-02-15 (a Monday).
SCHOOL_A = """
[working_time]
timezone = "Europe/London"
day_starts = "08:30"
day_ends = "15:30"
closures = ["2027-02-15"]

[[agencies]]
name = "Police"
respond_within = "4 working hours"

[[agencies]]
name = "Larkspur family support"
respond_within = "3 working days"

[[alert_rules]]
category = "Behaviour"
alert = ["head"]
"""


def directory(tmp_path: Path) -> schools.SchoolDirectory:
    """The deployment's vigil.toml (BASE) and one school's file (T0AAAAA.toml), loaded as
    `vigil serve` loads them; workspaces 1 (T0AAAAA) and 2 (T0BBBBB)."""
    (tmp_path / "vigil.toml").write_text(BASE)
    folder = tmp_path / "schools"
    folder.mkdir()
    (folder / "T0AAAAA.toml").write_text(SCHOOL_A)
    settings = load_settings(
        env_file=None, VIGIL_CONFIG=str(tmp_path / "vigil.toml"), VIGIL_SCHOOLS_DIR=str(folder)
    )
    base = load_school(settings)
    found = load_schools(settings, base, load_catalogue(settings, base))
    found.learn(1, "T0AAAAA")
    found.learn(2, "T0BBBBB")
    return found


def test_two_schools_get_their_own_timescales_and_alert_recipients(tmp_path: Path) -> None:
    found = directory(tmp_path)
    a, b = found.school(1), found.school(2)
    assert a.source.endswith("T0AAAAA.toml") and b.source.endswith("vigil.toml")
    # A referral to the police at 14:00 on Friday 12 February 2027 (UTC = London in winter).
    referred = dt.datetime(2027, 2, 12, 14, 0, tzinfo=dt.UTC)
    due_a = a.config.agency("Police").timescale.due(referred, a.config.working_time)  # type: ignore[union-attr]
    due_b = b.config.agency("Police").timescale.due(referred, b.config.working_time)  # type: ignore[union-attr]
    # A: 1.5 h left on Friday, Monday closed, 2.5 h on Tuesday from 08:30.
    assert due_a == dt.datetime(2027, 2, 16, 11, 0, tzinfo=dt.UTC)
    # B: one working day, so Monday at 14:00.
    assert due_b == dt.datetime(2027, 2, 15, 14, 0, tzinfo=dt.UTC)
    assert a.catalogue.agencies == ("Police", "Larkspur family support")
    assert b.catalogue.agencies == ("Police",)
    assert found.config(2).agency("Larkspur family support") is None

    def alerted(school: schools.School) -> set[int]:
        behaviour = school.catalogue.category("Behaviour")
        assert behaviour is not None
        people = alert_recipients(
            author_id=99,
            categories=[behaviour],
            staff_by_role={"head": [10], "keyholder": [20], "dsl": [20]},
            class_teacher_ids=[30],
            added_ids=[],
        )
        return {p.staff_id for p in people}

    assert alerted(a) == {10}  # the school's rule: the head alone
    assert alerted(b) == {20, 30}  # the default: key-holders and class teachers


def test_a_mistake_in_a_schools_file_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "schools"
    folder.mkdir()
    (folder / "T0BROKEN.toml").write_text('[working_time]\nday_starts = "25:00"\n')
    settings = load_settings(env_file=None, VIGIL_SCHOOLS_DIR=str(folder))
    base = load_school(settings)
    with pytest.raises(ConfigError, match=r"T0BROKEN.toml: working_time.day_starts"):
        load_schools(settings, base, load_catalogue(settings, base))


def test_the_settings_page_replaces_only_its_sections(tmp_path: Path) -> None:
    found = directory(tmp_path)
    base = found.school(1)
    text = schools.settings_text(base.config)
    assert schools.edited_school(base, text).config == base.config  # the form round-trips
    edited = schools.edited_school(
        base,
        '[[agencies]]\nname = "Police"\nrespond_within = "2 working days"\n'
        '[casework]\noutcomes = ["moved school"]\n',
    )
    assert edited.config.agency_names == ("Police",)
    assert edited.catalogue.agencies == ("Police",)
    assert edited.config.outcomes[-1] == "moved school"
    assert edited.config.working_time == base.config.working_time  # left as the file says
    assert edited.config.alert_rules == base.config.alert_rules
    for text, key in (
        ('[[alert_rules]]\ncategory = "Behaviour"\nalert = ["staff"]\n', "alert_rules"),
        ('[working_time]\nday_ends = "07:00"\n', "working_time.day_ends"),
        ("[[agencies]\n", None),
    ):
        with pytest.raises(SchoolConfigError) as caught:
            schools.edited_school(base, text)
        assert caught.value.key == key and caught.value.source == "settings page"


def test_one_schools_save_changes_that_school_alone(tmp_path: Path) -> None:
    found = directory(tmp_path)
    b_before = found.school(2)
    found.edited(1, version=1, text='[casework]\noutcomes = ["moved school"]\n')
    assert "moved school" in found.config(1).outcomes
    assert found.school(2) is b_before and "moved school" not in found.config(2).outcomes
    found.edited(1, version=0, text="[casework]\noutcomes = []\n")  # older: ignored
    assert "moved school" in found.config(1).outcomes


def test_scheduled_checks_run_per_school_only_when_schools_differ(tmp_path: Path) -> None:
    found = directory(tmp_path)
    targets = each_school(found.default.config, found)
    assert [(w, c.working_time.day_starts) for w, c in targets] == [
        (1, dt.time(8, 30)),
        (2, dt.time(8, 0)),
    ]
    one = schools.single(found.default.config, found.default.catalogue)
    one.learn(1, "T0AAAAA")
    assert each_school(found.default.config, one) == [(None, found.default.config)]


async def test_settings_saved_in_the_database_reach_every_process(
    factory: SessionFactory, tmp_path: Path
) -> None:
    async with transaction(factory) as db:
        a = await workspaces.ensure(db, team_id="T0AAAAA", name="Larkspur")
        b = await workspaces.ensure(db, team_id="T0BBBBB", name="Bluebell")
        db.add(
            SchoolSettings(
                workspace_id=b.id, settings='[working_time]\nday_starts = "07:45"\n', version=3
            )
        )
    found = directory(tmp_path)
    async with factory() as db:
        await found.reload(db)
        rows = (await db.scalars(select(SchoolSettings.workspace_id))).all()
    assert rows == [b.id]
    assert found.config(b.id).working_time.day_starts == dt.time(7, 45)
    # A section replaces the file's whole section: what it leaves out is the default.
    assert found.config(b.id).working_time.day_ends == dt.time(18, 0)
    assert found.config(b.id).agency_names == ("Police",)  # vigil.toml's, not edited
    assert found.config(a.id).working_time.day_starts == dt.time(8, 30)  # its own file
