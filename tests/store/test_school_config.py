"""The school's configuration file: defaults, the example file, ranges, and every mistake."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from store import catalogue
from store.catalogue import Catalogue
from store.school_config import (
    DEFAULT_AGENCIES,
    Agency,
    SchoolConfig,
    SchoolConfigError,
    Timescale,
    load_school_config,
    parse_school_config,
)
from store.workdays import WorkingTime
from tests.support.paths import REPO

EXAMPLE = REPO / "vigil.example.toml"
LONDON = ZoneInfo("Europe/London")


def write(tmp_path: Path, text: str) -> Path:
    """A config file holding `text`."""
    path = tmp_path / "vigil.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------


def test_no_path_means_defaults() -> None:
    config = load_school_config(None)
    assert config == SchoolConfig()
    assert config.working_time == WorkingTime()
    assert config.check_every_minutes == 5
    assert config.escalate_after_working_days == 2
    assert config.agencies == DEFAULT_AGENCIES


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_school_config(tmp_path / "absent.toml") == SchoolConfig()


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_school_config(write(tmp_path, "")) == SchoolConfig()


def test_default_agencies_and_timescales() -> None:
    assert {a.name: a.timescale.describe() for a in DEFAULT_AGENCIES} == {
        "Children's social care (MASH)": "1 working day",
        "Police": "1 working day",
        "CAMHS": "20 working days",
        "Early help": "5 working days",
        "School nursing": "5 working days",
        "LADO": "1 working day",
    }


def test_default_agencies_match_the_catalogue() -> None:
    assert tuple(a.name for a in DEFAULT_AGENCIES) == catalogue.DEFAULT_AGENCIES


# --- the example file ----------------------------------------------------------------------


def test_example_file_parses_to_the_defaults_plus_its_closures() -> None:
    config = load_school_config(EXAMPLE)
    assert config.agencies == DEFAULT_AGENCIES
    assert config.check_every_minutes == 5
    assert config.escalate_after_working_days == 2
    wt = config.working_time
    assert (wt.timezone, wt.day_starts, wt.day_ends, wt.region) == (
        "Europe/London",
        dt.time(8),
        dt.time(18),
        "ENG",
    )
    # the example's rule is the default disclosure rule: the categories are the defaults
    assert Catalogue.from_config(rules=config.alert_rules) == Catalogue.from_config()
    christmas = {dt.date(2026, 12, 21) + dt.timedelta(days=n) for n in range(12)}
    assert wt.closures == frozenset(christmas | {dt.date(2027, 2, 16)})


def test_example_file_shows_an_on_call_rota_in_comments_that_parses() -> None:
    """The rota is an example to edit (commented out: the default is no rota); uncommented
    it is valid and shows every key."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = lines.index("# [[on_call]]")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line.removeprefix("#").removeprefix(" "))
    data = tomllib.loads("\n".join(block))
    assert {key for entry in data["on_call"] for key in entry} == {
        "staff",
        "days",
        "from",
        "to",
        "holidays",
    }
    config = parse_school_config(data)
    assert [entry.staff for entry in config.on_call] == [
        "dsl@school.example",
        "deputy.dsl@school.example",
    ]


def test_example_file_shows_every_key() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(data) == {
        "working_time",
        "nudges",
        "agencies",
        "allegations",
        "urgent",
        "unread",
        "alert_rules",
        "casework",
        "retention",
    }
    assert set(data["retention"]) == {"pupil_years", "allegation_years"}
    assert set(data["allegations"]) == {"manager", "manager_when_head", "lado_agency"}
    assert set(data["urgent"]) == {"escalate_every_minutes"}
    assert set(data["unread"]) == {"chase_after_working_hours"}
    assert set(data["casework"]) == {"outcomes"}
    assert set(data["alert_rules"][0]) == {
        "category",
        "alert",
        "on_action",
        "chosen_by",
        "restricted",
    }
    assert set(data["working_time"]) == {
        "timezone",
        "day_starts",
        "day_ends",
        "bank_holidays",
        "closures",
    }
    assert set(data["nudges"]) == {"check_every_minutes", "escalate_after_working_days"}
    assert all(set(a) == {"name", "respond_within"} for a in data["agencies"])


def test_allegations_defaults_and_settings(tmp_path: Path) -> None:
    default = load_school_config(EXAMPLE).allegations
    assert (default.manager, default.manager_when_head, default.lado_agency) == (
        ("head",),
        ("chair",),
        "LADO",
    )
    path = write(
        tmp_path,
        '[allegations]\nmanager = ["head", "dsl"]\nmanager_when_head = "chair"\n'
        'lado_agency = "lado"\n',
    )
    config = load_school_config(path).allegations
    assert config.manager == ("head", "dsl") and config.manager_when_head == ("chair",)
    assert config.lado_agency == "LADO"  # as the agency list spells it
    # A file listing agencies without the LADO and not naming one still has a LADO.
    older = load_school_config(write(tmp_path, AGENCY.format("1 working day")))
    assert older.allegations.lado_default.name == "LADO"


def test_example_file_says_timescales_are_starting_points() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "STARTING POINTS" in text
    assert "local safeguarding partnership" in text


# --- reading values --------------------------------------------------------------------------


def test_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[working_time]
timezone = "Europe/London"
day_starts = "07:30"
day_ends = "16:45"
bank_holidays = "England and Wales"
closures = ["2026-10-26..2026-10-30", "2027-02-16", 2027-06-04]

[nudges]
check_every_minutes = 2.5
escalate_after_working_days = 3

[[agencies]]
name = "Children's social care (MASH)"
respond_within = "1 working day"

[[agencies]]
name = "Out-of-hours team"
respond_within = "2.5 working hours"
""",
    )
    config = load_school_config(path)
    wt = config.working_time
    assert (wt.day_starts, wt.day_ends, wt.region) == (dt.time(7, 30), dt.time(16, 45), "ENG")
    assert wt.closures == frozenset(
        {dt.date(2026, 10, d) for d in range(26, 31)} | {dt.date(2027, 2, 16), dt.date(2027, 6, 4)}
    )
    assert config.check_every_minutes == 2.5
    assert config.escalate_after_working_days == 3
    assert config.agency_names == ("Children's social care (MASH)", "Out-of-hours team")
    assert config.agency("out-of-hours team") == Agency(
        "Out-of-hours team", Timescale(2.5, "hours")
    )
    assert config.agency("Police") is None  # the file's list replaces the defaults


def test_partial_tables_keep_the_other_defaults(tmp_path: Path) -> None:
    config = load_school_config(write(tmp_path, '[working_time]\nbank_holidays = "SCT"\n'))
    assert config.working_time == WorkingTime(region="SCT")
    assert config.agencies == DEFAULT_AGENCIES
    assert config.escalate_after_working_days == 2


def test_toml_native_times_and_dates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[working_time]\nday_starts = 08:15:00\nday_ends = 17:00:00\nclosures = [2027-02-16]\n",
    )
    wt = load_school_config(path).working_time
    assert (wt.day_starts, wt.day_ends) == (dt.time(8, 15), dt.time(17))
    assert wt.closures == frozenset({dt.date(2027, 2, 16)})


def test_closure_ranges_are_inclusive_and_cross_the_year_end(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[working_time]\nclosures = ["2026-12-31..2027-01-04", "2027-03-01..2027-03-01"]\n',
    )
    closures = load_school_config(path).working_time.closures
    assert sorted(closures) == [
        dt.date(2026, 12, 31),
        dt.date(2027, 1, 1),
        dt.date(2027, 1, 2),
        dt.date(2027, 1, 3),
        dt.date(2027, 1, 4),
        dt.date(2027, 3, 1),
    ]


def test_closures_from_the_file_are_not_working_days(tmp_path: Path) -> None:
    path = write(tmp_path, '[working_time]\nclosures = ["2027-02-15 .. 2027-02-19"]\n')
    wt = load_school_config(path).working_time
    assert wt.next_working_day(dt.date(2027, 2, 12)) == dt.date(2027, 2, 22)


# --- timescales ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "timescale", "described"),
    [
        ("1 working day", Timescale(1, "days"), "1 working day"),
        ("20 working days", Timescale(20, "days"), "20 working days"),
        ("1 Working Days", Timescale(1, "days"), "1 working day"),
        ("4 working hours", Timescale(4, "hours"), "4 working hours"),
        ("1 working hour", Timescale(1, "hours"), "1 working hour"),
        (" 2.5  working  hours ", Timescale(2.5, "hours"), "2.5 working hours"),
    ],
)
def test_timescale_parse_and_describe(text: str, timescale: Timescale, described: str) -> None:
    assert Timescale.parse(text) == timescale
    assert timescale.describe() == described


@pytest.mark.parametrize(
    "text", ["soon", "1 day", "1 working week", "working day", "-1 working day", "1.5 working days"]
)
def test_bad_timescale_text(text: str) -> None:
    with pytest.raises(ValueError):
        Timescale.parse(text)


def test_timescale_due_uses_working_time() -> None:
    working = WorkingTime()
    friday = dt.datetime(2026, 6, 12, 15, tzinfo=LONDON)
    assert Timescale(1, "days").due(friday, working) == dt.datetime(2026, 6, 15, 15, tzinfo=LONDON)
    # Three working hours on Friday afternoon, one on Monday morning.
    assert Timescale(4, "hours").due(friday, working) == dt.datetime(2026, 6, 15, 9, tzinfo=LONDON)


def test_should_escalate_after_the_configured_working_days() -> None:
    config = SchoolConfig(escalate_after_working_days=2)
    due = dt.datetime(2026, 6, 12, 15, tzinfo=LONDON)  # Friday
    assert not config.should_escalate(due, dt.datetime(2026, 6, 15, 9, tzinfo=LONDON))  # 1
    assert config.should_escalate(due, dt.datetime(2026, 6, 16, 9, tzinfo=LONDON))  # 2


# --- mistakes --------------------------------------------------------------------------------

AGENCY = '[[agencies]]\nname = "Police"\nrespond_within = "{}"\n'
RULE = '[[alert_rules]]\ncategory = "Behaviour"\nalert = ["keyholder"]\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[working_time]\nday_starts = "8am"', "working_time.day_starts", 'like "08:00"'),
        ('[working_time]\nday_ends = "25:00"', "working_time.day_ends", 'like "08:00"'),
        ("[working_time]\nday_ends = 18", "working_time.day_ends", 'like "08:00"'),
        (
            '[working_time]\nday_starts = "18:00"\nday_ends = "08:00"',
            "working_time.day_ends",
            "must end after it starts (18:00), got 08:00",
        ),
        (
            '[working_time]\nday_starts = "09:00"\nday_ends = "09:00"',
            "working_time.day_ends",
            "must end after it starts",
        ),
        (
            '[working_time]\nclosures = ["2027-02-30"]',
            "working_time.closures[1]",
            "expected a date",
        ),
        (
            '[working_time]\nclosures = ["2027-02-16", "16/02/2027"]',
            "working_time.closures[2]",
            "expected a date",
        ),
        (
            '[working_time]\nclosures = ["2027-01-01..soon"]',
            "working_time.closures[1]",
            "expected a date",
        ),
        (
            '[working_time]\nclosures = ["2027-01-04..2026-12-21"]',
            "working_time.closures[1]",
            "ends before it starts",
        ),
        (
            '[working_time]\nclosures = ["2026-12-21..2036-01-01"]',
            "working_time.closures[1]",
            "is a year mistyped?",
        ),
        ("[working_time]\nclosures = [20270216]", "working_time.closures[1]", "expected a date"),
        (
            "[working_time]\nclosures = [2027-02-16T09:00:00]",
            "working_time.closures[1]",
            "expected a date",
        ),
        ('[working_time]\nclosures = "2027-02-16"', "working_time.closures", "expected a list"),
        (
            '[working_time]\nbank_holidays = "France"',
            "working_time.bank_holidays",
            "unknown bank-holiday region 'France'",
        ),
        (
            '[working_time]\ntimezone = "London"',
            "working_time.timezone",
            "unknown time zone 'London'",
        ),
        ("[working_time]\ntimezone = 0", "working_time.timezone", "expected text"),
        (AGENCY.format("soon"), "agencies[1].respond_within", 'expected "N working day(s)"'),
        (AGENCY.format("1.5 working days"), "agencies[1].respond_within", "whole number"),
        (AGENCY.format("0 working hours"), "agencies[1].respond_within", "positive number"),
        (
            AGENCY.format("1 working day") + '[[agencies]]\nname = "police"\n'
            'respond_within = "2 working days"\n',
            "agencies[2].name",
            "'police' is listed twice (also agencies[1])",
        ),
        ('[[agencies]]\nname = "Police"\n', "agencies[1].respond_within", "missing"),
        (
            '[[agencies]]\nname = " "\nrespond_within = "1 working day"\n',
            "agencies[1].name",
            "must not be empty",
        ),
        (
            '[[agencies]]\nname = "Police"\nrespond_within = "1 working day"\ncolour = "blue"\n',
            "agencies[1].colour",
            "unknown key",
        ),
        ("agencies = []", "agencies", "no agencies listed"),
        ('agencies = ["Police"]', "agencies", "expected [[agencies]] tables"),
        ("[nudges]\ncheck_every_minutes = 0", "nudges.check_every_minutes", "greater than 0"),
        ("[nudges]\ncheck_every_minutes = -5", "nudges.check_every_minutes", "greater than 0"),
        ('[nudges]\ncheck_every_minutes = "5"', "nudges.check_every_minutes", "greater than 0"),
        ("[nudges]\ncheck_every_minutes = true", "nudges.check_every_minutes", "greater than 0"),
        ("[nudges]\ncheck_every_minutes = nan", "nudges.check_every_minutes", "greater than 0"),
        (
            "[nudges]\nescalate_after_working_days = 0",
            "nudges.escalate_after_working_days",
            "at least 1",
        ),
        (
            "[nudges]\nescalate_after_working_days = 1.5",
            "nudges.escalate_after_working_days",
            "whole number",
        ),
        ("[nudges]\ncheck_every_minute = 5", "nudges.check_every_minute", "unknown key"),
        ("[working_hours]\nday_starts = '08:00'", "working_hours", "unknown key"),
        ('working_time = "08:00-18:00"', "working_time", "expected a table"),
        ('[allegations]\nmanager = ["headteacher"]', "allegations.manager", "unknown role"),
        ("[allegations]\nmanager = []", "allegations.manager", "expected a list of roles"),
        ("[allegations]\nmanager_when_head = [1]", "allegations.manager_when_head", "roles"),
        ('[allegations]\nlado_agency = "LADOO"', "allegations.lado_agency", "not a configured"),
        (
            AGENCY.format("1 working day") + '[allegations]\nlado_agency = "LADO"\n',
            "allegations.lado_agency",
            "expected one of 'Police'",
        ),
        ('[allegations]\nmanagers = ["head"]', "allegations.managers", "unknown key"),
        ('allegations = "head"', "allegations", "expected a table"),
        (
            RULE + '[[alert_rules]]\ncategory = "Medical"\nalert = ["dls"]\n',
            "alert_rules[2].alert",
            'unknown role "dls"',
        ),
        (RULE.replace('["keyholder"]', "[]"), "alert_rules[1].alert", "at least one role"),
        (RULE + 'on_action = ["teacher"]\n', "alert_rules[1].on_action", 'unknown role "teacher"'),
        (RULE + 'chosen_by = "everyone"\n', "alert_rules[1].chosen_by", '"anyone" or "keyholder"'),
        (RULE + 'restricted = "yes"\n', "alert_rules[1].restricted", "true or false"),
        (RULE + 'alerts = ["dsl"]\n', "alert_rules[1].alerts", "unknown key"),
        ('[[alert_rules]]\nalert = ["dsl"]\n', "alert_rules[1].category", "missing"),
        (RULE + RULE.replace("Behaviour", "behaviour"), "alert_rules[2].category", "has a rule"),
        ('alert_rules = ["Behaviour"]', "alert_rules", "expected [[alert_rules]] tables"),
    ],
)
def test_mistakes_name_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SchoolConfigError) as raised:
        load_school_config(path)
    error = raised.value
    assert error.source == str(path)
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"{path}: {key}: ")


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[working_time\n")
    with pytest.raises(SchoolConfigError, match="not valid TOML") as raised:
        load_school_config(path)
    assert str(raised.value).startswith(str(path))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_bytes(b'[working_time]\ntimezone = "\xff"\n')
    with pytest.raises(SchoolConfigError, match="not UTF-8"):
        load_school_config(path)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(SchoolConfigError, match="cannot read the file"):
        load_school_config(tmp_path)  # a directory


def test_errors_are_value_errors_and_parse_names_the_source() -> None:
    with pytest.raises(ValueError, match=r"^settings: nudges\.check_every_minutes: "):
        parse_school_config({"nudges": {"check_every_minutes": 0}}, source="settings")


# -- [casework] outcomes ------------------------------------------------------------------


def test_configured_outcomes_follow_the_standard_ones() -> None:
    config = parse_school_config({"casework": {"outcomes": [" Support plan in place "]}})
    assert config.outcomes == (
        "no further action",
        "referred",
        "early help",
        "resolved in school",
        "Support plan in place",
    )
    assert SchoolConfig().outcomes == config.outcomes[:4]


@pytest.mark.parametrize(
    ("casework", "key", "problem"),
    [
        ({"outcome": ["x"]}, "casework.outcome", "unknown key"),
        ({"outcomes": "Support plan"}, "casework.outcomes", "expected a list"),
        ({"outcomes": ["ok", 3]}, "casework.outcomes[2]", "expected text"),
        ({"outcomes": [""]}, "casework.outcomes[1]", "must not be empty"),
        ({"outcomes": ["Referred"]}, "casework.outcomes[1]", "a standard outcome"),
        ({"outcomes": ["A", "a"]}, "casework.outcomes[2]", "listed twice"),
        ({"outcomes": ["x" * 101]}, "casework.outcomes[1]", "longer than 100"),
    ],
)
def test_a_bad_casework_key_is_named(casework: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(SchoolConfigError) as raised:
        parse_school_config({"casework": casework}, source="vigil.toml")
    assert raised.value.key == key
    assert problem in raised.value.problem
    assert str(raised.value).startswith(f"vigil.toml: {key}: ")
