"""The on-call rota (`store.rota`) and its configuration (`[[on_call]]`, `[urgent]`,
`[unread]` in vigil.toml): who is on duty when, across nights and bank holidays."""

from __future__ import annotations

import datetime as dt

import pytest

from store.rota import OnCall, Person, on_duty, step_recipients, urgent_plan
from store.school_config import SchoolConfigError, parse_school_config
from store.workdays import WorkingTime
from tests.support.clock import at

WORKING = WorkingTime()
DAYTIME = "day@school.example"
NIGHTS = "night@school.example"
HOLIDAY = "holiday@school.example"
# Easter Monday 2027 (28 March is Easter Sunday): a bank holiday in England.
EASTER_MONDAY = dt.date(2027, 3, 29)
ORDINARY_MONDAY = dt.date(2027, 4, 12)

STAFF = [
    Person(1, DAYTIME, frozenset({"dsl"}), True),
    Person(2, NIGHTS, frozenset({"keyholder"}), True),
    Person(3, HOLIDAY, frozenset({"slt"}), False),
    Person(4, "dsl2@school.example", frozenset({"dsl"}), True),
    Person(5, "head@school.example", frozenset({"head"}), False),
    Person(6, "teacher@school.example", frozenset({"teacher"}), False),
]


def rota(*, daytime_holidays: bool) -> tuple[OnCall, ...]:
    config = parse_school_config(
        {
            "on_call": [
                {
                    "staff": DAYTIME,
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                    "from": "08:00",
                    "to": "18:00",
                    "holidays": daytime_holidays,
                },
                {"staff": NIGHTS, "from": "18:00", "to": "08:00", "holidays": True},
                {"staff": HOLIDAY, "from": "08:00", "to": "18:00", "holidays": "only"},
            ]
        }
    )
    return config.on_call


def test_the_daytime_entry_covers_school_hours_on_weekdays_only() -> None:
    entries = rota(daytime_holidays=False)
    assert on_duty(entries, at(ORDINARY_MONDAY, 8), WORKING) == [DAYTIME]
    assert on_duty(entries, at(ORDINARY_MONDAY, 17, 59), WORKING) == [DAYTIME]
    assert on_duty(entries, at(ORDINARY_MONDAY, 18), WORKING) == [NIGHTS]
    saturday = ORDINARY_MONDAY - dt.timedelta(days=2)
    assert on_duty(entries, at(saturday, 11), WORKING) == []


def test_an_overnight_span_runs_past_midnight_into_the_next_day() -> None:
    entries = rota(daytime_holidays=False)
    tuesday = ORDINARY_MONDAY + dt.timedelta(days=1)
    assert on_duty(entries, at(tuesday, 2), WORKING) == [NIGHTS]  # Monday night's span
    assert on_duty(entries, at(tuesday, 7, 59), WORKING) == [NIGHTS]
    assert on_duty(entries, at(tuesday, 8), WORKING) == [DAYTIME]


def test_a_bank_holiday_is_covered_only_by_entries_that_cover_holidays() -> None:
    without = rota(daytime_holidays=False)
    # Easter Monday 10:00: the weekday entry does not cover it; the holiday entry does.
    assert on_duty(without, at(EASTER_MONDAY, 10), WORKING) == [HOLIDAY]
    with_holidays = rota(daytime_holidays=True)
    assert on_duty(with_holidays, at(EASTER_MONDAY, 10), WORKING) == [DAYTIME, HOLIDAY]
    # On an ordinary Monday the holiday-only entry is off duty.
    assert on_duty(with_holidays, at(ORDINARY_MONDAY, 10), WORKING) == [DAYTIME]
    # The night entry covers the holiday's night too.
    assert on_duty(without, at(EASTER_MONDAY, 23), WORKING) == [NIGHTS]


def test_a_closure_date_counts_as_a_holiday() -> None:
    closed = WorkingTime(closures=frozenset({ORDINARY_MONDAY}))
    entries = rota(daytime_holidays=False)
    assert on_duty(entries, at(ORDINARY_MONDAY, 10), closed) == [HOLIDAY]


def test_the_plan_is_on_duty_then_the_rest_of_the_rota_then_the_head() -> None:
    entries = rota(daytime_holidays=True)
    plan = urgent_plan(
        rota=entries, at=at(EASTER_MONDAY, 10), working=WORKING, staff=STAFF, exclude={6}
    )
    # Daytime is first on duty; the holiday cover (also on duty) and nights are next.
    assert plan == [[1], [3, 2], [5]]
    assert step_recipients(plan, 1) == [1, 3, 2]
    assert step_recipients(plan, 2) == [1, 3, 2, 5]
    assert step_recipients(plan, 7) == [1, 3, 2, 5]  # the last step repeats


def test_nobody_on_duty_falls_back_to_every_dsl() -> None:
    saturday = ORDINARY_MONDAY - dt.timedelta(days=2)
    plan = urgent_plan(
        rota=rota(daytime_holidays=False), at=at(saturday, 11), working=WORKING, staff=STAFF
    )
    assert plan[0] == [1, 4]
    assert urgent_plan(rota=(), at=at(saturday, 11), working=WORKING, staff=STAFF)[0] == [1, 4]


def test_excluded_staff_are_never_in_the_plan() -> None:
    """The reporter, or anyone the caller must keep out, is never told."""
    plan = urgent_plan(
        rota=rota(daytime_holidays=True),
        at=at(ORDINARY_MONDAY, 10),
        working=WORKING,
        staff=STAFF,
        exclude={1, 5},
    )
    flat = [i for stage in plan for i in stage]
    assert 1 not in flat and 5 not in flat
    assert plan[0] == [4]  # the one on duty is kept out, so every other DSL is told at once


def test_defaults() -> None:
    config = parse_school_config({})
    assert config.on_call == ()
    assert config.escalate_every_minutes == 10
    assert config.chase_after_working_hours == 4
    tuned = parse_school_config(
        {"urgent": {"escalate_every_minutes": 5}, "unread": {"chase_after_working_hours": 2.5}}
    )
    assert (tuned.escalate_every_minutes, tuned.chase_after_working_hours) == (5, 2.5)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"on_call": {"staff": DAYTIME}}, "on_call"),
        ({"on_call": [{"days": ["mon"]}]}, "on_call[1].staff"),
        ({"on_call": [{"staff": "not an email"}]}, "on_call[1].staff"),
        (
            {"on_call": [{"staff": DAYTIME}, {"staff": DAYTIME, "days": ["funday"]}]},
            "on_call[2].days",
        ),
        ({"on_call": [{"staff": DAYTIME, "days": []}]}, "on_call[1].days"),
        ({"on_call": [{"staff": DAYTIME, "from": "25:00"}]}, "on_call[1].from"),
        ({"on_call": [{"staff": DAYTIME, "to": "8am"}]}, "on_call[1].to"),
        ({"on_call": [{"staff": DAYTIME, "holidays": "sometimes"}]}, "on_call[1].holidays"),
        ({"on_call": [{"staff": DAYTIME, "holidays": 1}]}, "on_call[1].holidays"),
        ({"on_call": [{"staff": DAYTIME, "who": "x"}]}, "on_call[1].who"),
        ({"urgent": {"escalate_every_minutes": 0}}, "urgent.escalate_every_minutes"),
        ({"urgent": {"every": 5}}, "urgent.every"),
        ({"unread": {"chase_after_working_hours": "4"}}, "unread.chase_after_working_hours"),
    ],
)
def test_a_mistake_names_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(SchoolConfigError) as raised:
        parse_school_config(data, source="vigil.toml")
    assert raised.value.key == key, str(raised.value)
