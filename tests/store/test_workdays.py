"""Working-day arithmetic: weekends, bank holidays, closures, hours, and the clocks changing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.workdays import WorkingTime, normalise_region

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
WT = WorkingTime()


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A London wall-clock time as an aware datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A UTC instant."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- working days ----------------------------------------------------------------------


def test_weekends_are_not_working_days() -> None:
    week = [dt.date(2026, 6, 8) + dt.timedelta(days=n) for n in range(7)]  # Mon..Sun
    assert [WT.is_working_day(d) for d in week] == [True] * 5 + [False] * 2


@pytest.mark.parametrize(
    "day",
    [
        dt.date(2026, 12, 25),  # Christmas Day (Friday)
        dt.date(2026, 12, 28),  # Boxing Day is a Saturday: the substitute day is Monday
        dt.date(2027, 1, 1),  # New Year's Day
        dt.date(2027, 3, 26),  # Good Friday
        dt.date(2027, 3, 29),  # Easter Monday
        dt.date(2026, 5, 25),  # Spring bank holiday
        dt.date(2026, 8, 31),  # Summer bank holiday
        dt.date(2027, 12, 27),  # Christmas Day 2027 is a Saturday: substitute Monday
        dt.date(2027, 12, 28),  # Boxing Day 2027 is a Sunday: substitute Tuesday
    ],
)
def test_england_bank_holidays_are_not_working_days(day: dt.date) -> None:
    assert day.weekday() < 5
    assert not WT.is_working_day(day)


def test_days_around_bank_holidays_are_working_days() -> None:
    assert WT.is_working_day(dt.date(2026, 12, 24))
    assert WT.is_working_day(dt.date(2026, 12, 29))
    assert WT.is_working_day(dt.date(2027, 3, 30))


def test_region_switch_scotland_differs_from_england() -> None:
    scotland = WorkingTime(region="SCT")
    # 2 January is a bank holiday in Scotland only; Easter Monday in England only.
    assert WT.is_working_day(dt.date(2026, 1, 2))
    assert not scotland.is_working_day(dt.date(2026, 1, 2))
    assert not WT.is_working_day(dt.date(2026, 4, 6))
    assert scotland.is_working_day(dt.date(2026, 4, 6))
    # St Andrew's Day (substitute Monday 30 November 2026).
    assert not scotland.is_working_day(dt.date(2026, 11, 30))
    assert WT.is_working_day(dt.date(2026, 11, 30))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("ENG", "ENG"),
        ("eng", "ENG"),
        ("England and Wales", "ENG"),
        ("england", "ENG"),
        ("WLS", "WLS"),
        ("Wales", "WLS"),
        ("SCT", "SCT"),
        ("Scotland", "SCT"),
        (" NIR ", "NIR"),
        ("Northern Ireland", "NIR"),
    ],
)
def test_region_names(text: str, code: str) -> None:
    assert normalise_region(text) == code
    assert WorkingTime(region=text).region == code


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown bank-holiday region 'France'"):
        WorkingTime(region="France")


def test_closure_dates_are_not_working_days() -> None:
    inset = dt.date(2027, 2, 16)  # a Tuesday
    school = WorkingTime(closures=frozenset({inset}))
    assert WT.is_working_day(inset)
    assert not school.is_working_day(inset)
    assert school.next_working_day(dt.date(2027, 2, 15)) == dt.date(2027, 2, 17)
    assert school.add_working_days(at(2027, 2, 15, 10), 1) == at(2027, 2, 17, 10)


def test_closures_accept_any_iterable_and_stay_frozen() -> None:
    school = WorkingTime(closures={dt.date(2027, 2, 16)})  # type: ignore[arg-type]
    assert school.closures == frozenset({dt.date(2027, 2, 16)})
    assert hash(school) == hash(WorkingTime(closures=frozenset({dt.date(2027, 2, 16)})))


def test_next_working_day_skips_weekends_and_holidays() -> None:
    assert WT.next_working_day(dt.date(2026, 6, 12)) == dt.date(2026, 6, 15)  # Fri → Mon
    assert WT.next_working_day(dt.date(2026, 6, 13)) == dt.date(2026, 6, 15)  # Sat → Mon
    assert WT.next_working_day(dt.date(2026, 6, 15)) == dt.date(2026, 6, 16)
    assert WT.next_working_day(dt.date(2026, 12, 24)) == dt.date(2026, 12, 29)
    assert WT.next_working_day(dt.date(2027, 3, 25)) == dt.date(2027, 3, 30)


# --- working time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "working"),
    [
        (at(2026, 6, 10, 7, 59), False),
        (at(2026, 6, 10, 8, 0), True),  # day_starts is included
        (at(2026, 6, 10, 12, 0), True),
        (at(2026, 6, 10, 17, 59), True),
        (at(2026, 6, 10, 18, 0), False),  # day_ends is excluded
        (at(2026, 6, 13, 12, 0), False),  # Saturday
        (at(2026, 5, 25, 12, 0), False),  # Spring bank holiday
        (utc(2026, 6, 10, 7, 30), True),  # 08:30 BST
        (utc(2026, 6, 10, 17, 30), False),  # 18:30 BST
        (utc(2026, 1, 14, 7, 30), False),  # 07:30 GMT
        (utc(2026, 1, 14, 17, 30), True),  # 17:30 GMT
    ],
)
def test_is_working_time_boundaries(instant: dt.datetime, working: bool) -> None:
    assert WT.is_working_time(instant) is working


def test_is_working_time_to_the_microsecond() -> None:
    end = at(2026, 6, 10, 18)
    assert WT.is_working_time(end - dt.timedelta(microseconds=1))
    assert not WT.is_working_time(end)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        WT.is_working_time(dt.datetime(2026, 6, 10, 12))
    with pytest.raises(ValueError, match="naive"):
        WT.add_working_days(dt.datetime(2026, 6, 10, 12), 1)


def test_working_day_of_is_the_local_date() -> None:
    assert WT.working_day_of(utc(2026, 6, 30, 23, 30)) == dt.date(2026, 7, 1)  # 00:30 BST
    assert WT.working_day_of(utc(2026, 12, 31, 23, 30)) == dt.date(2026, 12, 31)  # GMT


def test_next_working_time() -> None:
    assert WT.next_working_time(at(2026, 6, 10, 12)) == at(2026, 6, 10, 12)
    assert WT.next_working_time(at(2026, 6, 10, 6)) == at(2026, 6, 10, 8)
    assert WT.next_working_time(at(2026, 6, 10, 18)) == at(2026, 6, 11, 8)
    assert WT.next_working_time(at(2026, 6, 12, 19)) == at(2026, 6, 15, 8)  # Fri evening
    assert WT.next_working_time(at(2026, 6, 13, 12)) == at(2026, 6, 15, 8)  # Saturday
    assert WT.next_working_time(at(2026, 12, 24, 18, 30)) == at(2026, 12, 29, 8)


def test_results_are_utc() -> None:
    for result in (
        WT.next_working_time(at(2026, 6, 10, 12)),
        WT.add_working_days(at(2026, 6, 10, 12), 1),
        WT.add_working_hours(at(2026, 6, 10, 12), 1),
    ):
        assert result.tzinfo is UTC


def test_working_hours_and_timezone_are_configurable() -> None:
    late = WorkingTime(timezone="UTC", day_starts=dt.time(9), day_ends=dt.time(17, 30))
    assert not late.is_working_time(utc(2026, 6, 10, 8, 30))
    assert late.is_working_time(utc(2026, 6, 10, 17, 29))
    assert late.add_working_hours(utc(2026, 6, 10, 17), 1) == utc(2026, 6, 11, 9, 30)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"day_starts": dt.time(18), "day_ends": dt.time(8)}, "must be after"),
        ({"day_starts": dt.time(9), "day_ends": dt.time(9)}, "must be after"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": ""}, "unknown time zone"),
    ],
)
def test_bad_working_time_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingTime(**kwargs)


# --- adding working days -----------------------------------------------------------------


def test_one_working_day_from_friday_afternoon_is_monday_afternoon() -> None:
    assert WT.add_working_days(at(2026, 6, 12, 15), 1) == at(2026, 6, 15, 15)


def test_a_start_outside_working_time_rolls_forward_to_the_next_day_start() -> None:
    # Friday 19:00 counts from Monday 08:00, so one working day later is Tuesday 08:00.
    assert WT.add_working_days(at(2026, 6, 12, 19), 1) == at(2026, 6, 16, 8)
    assert WT.add_working_days(at(2026, 6, 12, 18), 1) == at(2026, 6, 16, 8)  # 18:00 is out
    assert WT.add_working_days(at(2026, 6, 13, 11), 1) == at(2026, 6, 16, 8)  # Saturday
    assert WT.add_working_days(at(2026, 6, 15, 7), 1) == at(2026, 6, 16, 8)  # Monday early
    assert WT.add_working_days(at(2026, 6, 12, 17, 59), 1) == at(2026, 6, 15, 17, 59)


def test_zero_working_days_is_the_next_working_time() -> None:
    assert WT.add_working_days(at(2026, 6, 12, 15), 0) == at(2026, 6, 12, 15)
    assert WT.add_working_days(at(2026, 6, 12, 19), 0) == at(2026, 6, 15, 8)


def test_negative_working_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WT.add_working_days(at(2026, 6, 12, 15), -1)


def test_working_days_skip_bank_holidays_and_substitute_days() -> None:
    # Christmas Eve 2026 (Thu) → Christmas Fri, weekend, Boxing Day substitute Mon → Tue.
    assert WT.add_working_days(at(2026, 12, 24, 15), 1) == at(2026, 12, 29, 15)
    # Spring bank holiday Monday 25 May 2026.
    assert WT.add_working_days(at(2026, 5, 22, 10), 1) == at(2026, 5, 26, 10)
    # Easter 2027: Good Friday and Easter Monday, and the clocks go forward that Sunday.
    assert WT.add_working_days(at(2027, 3, 25, 10), 1) == at(2027, 3, 30, 10)
    assert WT.add_working_days(at(2027, 3, 25, 10), 1) == utc(2027, 3, 30, 9)


def test_several_working_days() -> None:
    assert WT.add_working_days(at(2026, 6, 8, 9), 5) == at(2026, 6, 15, 9)
    # 20 working days from Monday 1 June 2026: four weeks, no bank holidays.
    assert WT.add_working_days(at(2026, 6, 1, 9), 20) == at(2026, 6, 29, 9)


def test_clocks_going_forward_keep_the_local_time_of_day() -> None:
    start = at(2026, 3, 27, 15)  # Friday, GMT
    due = WT.add_working_days(start, 1)
    assert due == at(2026, 3, 30, 15)  # Monday, BST
    assert due == utc(2026, 3, 30, 14)
    assert start.utcoffset() == dt.timedelta(0)
    assert due.astimezone(LONDON).utcoffset() == dt.timedelta(hours=1)


def test_clocks_going_back_keep_the_local_time_of_day() -> None:
    start = at(2026, 10, 23, 15)  # Friday, BST
    due = WT.add_working_days(start, 1)
    assert due == at(2026, 10, 26, 15)  # Monday, GMT
    assert due == utc(2026, 10, 26, 15)
    assert start.utcoffset() == dt.timedelta(hours=1)
    assert due.astimezone(LONDON).utcoffset() == dt.timedelta(0)


def test_rolling_forward_across_the_clocks_changing() -> None:
    # Friday 19:00 GMT → counting starts Monday 08:00 BST → Tuesday 08:00 BST.
    assert WT.add_working_days(at(2026, 3, 27, 19), 1) == utc(2026, 3, 31, 7)
    assert WT.next_working_time(at(2026, 10, 23, 19)) == utc(2026, 10, 26, 8)


# --- adding working hours ----------------------------------------------------------------


def test_working_hours_within_a_day() -> None:
    assert WT.add_working_hours(at(2026, 6, 10, 9), 4) == at(2026, 6, 10, 13)
    assert WT.add_working_hours(at(2026, 6, 10, 9), 1.5) == at(2026, 6, 10, 10, 30)


def test_working_hours_that_end_a_day_exactly_stop_at_day_ends() -> None:
    assert WT.add_working_hours(at(2026, 6, 10, 14), 4) == at(2026, 6, 10, 18)
    assert WT.add_working_hours(at(2026, 6, 10, 8), 10) == at(2026, 6, 10, 18)


def test_working_hours_across_the_evening() -> None:
    assert WT.add_working_hours(at(2026, 6, 9, 16), 3) == at(2026, 6, 10, 9)
    assert WT.add_working_hours(at(2026, 6, 9, 20), 3) == at(2026, 6, 10, 11)


def test_working_hours_across_a_weekend() -> None:
    assert WT.add_working_hours(at(2026, 6, 12, 16), 4) == at(2026, 6, 15, 10)
    assert WT.add_working_hours(at(2026, 6, 12, 19), 10) == at(2026, 6, 15, 18)
    assert WT.add_working_hours(at(2026, 6, 13, 12), 12) == at(2026, 6, 16, 10)


def test_working_hours_across_bank_holidays_and_closures() -> None:
    assert WT.add_working_hours(at(2026, 12, 24, 17), 2) == at(2026, 12, 29, 9)
    school = WorkingTime(closures=frozenset({dt.date(2026, 12, 29)}))
    assert school.add_working_hours(at(2026, 12, 24, 17), 2) == at(2026, 12, 30, 9)


def test_working_hours_across_the_clocks_changing() -> None:
    # Friday 16:00 GMT + 4 working hours: 2 on Friday, 2 on Monday → 10:00 BST.
    assert WT.add_working_hours(at(2026, 3, 27, 16), 4) == at(2026, 3, 30, 10)
    assert WT.add_working_hours(at(2026, 3, 27, 16), 4) == utc(2026, 3, 30, 9)
    assert WT.add_working_hours(at(2026, 10, 23, 16), 4) == utc(2026, 10, 26, 10)


def test_a_working_day_with_a_clock_change_is_counted_in_real_hours() -> None:
    # UK clocks change on Sundays; Egypt's go forward at 00:00 on Friday 24 April 2026,
    # so a 00:00-06:00 working day that Friday is five real hours long (01:00-06:00).
    cairo = ZoneInfo("Africa/Cairo")
    night = WorkingTime(timezone="Africa/Cairo", day_starts=dt.time(0), day_ends=dt.time(6))
    thursday = dt.datetime(2026, 4, 23, 0, tzinfo=cairo)
    assert night.add_working_hours(thursday, 6 + 5) == utc(2026, 4, 24, 3)  # 06:00 EEST
    assert night.add_working_hours(thursday, 6 + 1) == utc(2026, 4, 23, 23)  # 02:00 EEST
    # The skipped 00:00 means the instant the clocks change (01:00 EEST).
    assert night.add_working_days(thursday, 1) == utc(2026, 4, 23, 22)
    assert night.is_working_time(utc(2026, 4, 23, 22))


def test_zero_and_bad_working_hours() -> None:
    assert WT.add_working_hours(at(2026, 6, 12, 19), 0) == at(2026, 6, 15, 8)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="non-negative"):
            WT.add_working_hours(at(2026, 6, 12, 15), bad)


# --- working days between (overdue counting) ---------------------------------------------


def test_working_days_between_counts_from_the_day_after() -> None:
    due = at(2026, 6, 12, 15)  # Friday
    assert WT.working_days_between(due, at(2026, 6, 12, 15)) == 0
    assert WT.working_days_between(due, at(2026, 6, 12, 17)) == 0  # the due day itself
    assert WT.working_days_between(due, at(2026, 6, 13, 12)) == 0  # Saturday
    assert WT.working_days_between(due, at(2026, 6, 14, 23, 59)) == 0  # Sunday
    assert WT.working_days_between(due, at(2026, 6, 15, 0, 1)) == 1  # Monday has begun
    assert WT.working_days_between(due, at(2026, 6, 15, 8)) == 1
    assert WT.working_days_between(due, at(2026, 6, 16, 8)) == 2
    assert WT.working_days_between(due, at(2026, 6, 22, 8)) == 6


def test_working_days_between_is_zero_backwards() -> None:
    assert WT.working_days_between(at(2026, 6, 16, 8), at(2026, 6, 12, 15)) == 0


def test_working_days_between_skips_holidays_and_closures() -> None:
    due = at(2026, 12, 24, 15)
    assert WT.working_days_between(due, at(2026, 12, 28, 12)) == 0
    assert WT.working_days_between(due, at(2026, 12, 29, 8)) == 1
    school = WorkingTime(closures=frozenset({dt.date(2026, 12, 29)}))
    assert school.working_days_between(due, at(2026, 12, 29, 8)) == 0
    assert school.working_days_between(due, at(2026, 12, 30, 8)) == 1


def test_working_days_between_uses_local_dates() -> None:
    due = at(2026, 6, 10, 15)  # Wednesday BST
    assert WT.working_days_between(due, utc(2026, 6, 10, 23, 30)) == 1  # 00:30 Thursday BST


# --- properties --------------------------------------------------------------------------

instants = st.datetimes(
    min_value=dt.datetime(2025, 1, 1),
    max_value=dt.datetime(2028, 6, 30),
    timezones=st.sampled_from([UTC, LONDON]),
    allow_imaginary=False,
)
hours = st.floats(min_value=0, max_value=300, allow_nan=False, allow_infinity=False)
configs = st.sampled_from(
    [
        WT,
        WorkingTime(region="SCT"),
        WorkingTime(day_starts=dt.time(7, 30), day_ends=dt.time(16, 45)),
        WorkingTime(closures=frozenset(dt.date(2026, 12, 21) + dt.timedelta(n) for n in range(12))),
    ]
)


@settings(deadline=None)
@given(configs, instants, hours, hours)
def test_add_working_hours_is_monotonic_in_hours(
    working: WorkingTime, start: dt.datetime, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert working.add_working_hours(start, low) <= working.add_working_hours(start, high)


@settings(deadline=None)
@given(configs, instants, instants, hours)
def test_add_working_hours_is_monotonic_in_start(
    working: WorkingTime, a: dt.datetime, b: dt.datetime, amount: float
) -> None:
    early, late = sorted((a, b))
    assert working.add_working_hours(early, amount) <= working.add_working_hours(late, amount)
    assert working.add_working_hours(early, amount) >= early


@settings(deadline=None)
@given(configs, instants, st.floats(min_value=0.01, max_value=300))
def test_add_working_hours_ends_just_after_working_time(
    working: WorkingTime, start: dt.datetime, amount: float
) -> None:
    result = working.add_working_hours(start, amount)
    assert working.is_working_time(result - dt.timedelta(microseconds=1))


@settings(deadline=None)
@given(configs, instants, st.integers(min_value=0, max_value=40))
def test_add_working_days_lands_in_working_time_at_the_same_clock_time(
    working: WorkingTime, start: dt.datetime, days: int
) -> None:
    due = working.add_working_days(start, days)
    assert working.is_working_time(due)
    begin = working.next_working_time(start)
    assert due.astimezone(LONDON).time() == begin.astimezone(LONDON).time()
    assert working.working_days_between(begin, due) == days


@settings(deadline=None)
@given(instants, st.integers(min_value=1, max_value=30))
def test_working_days_and_hours_agree_up_to_the_day_boundary(start: dt.datetime, days: int) -> None:
    # 08:00-18:00 is ten hours a day; in the UK the clocks never change within it.
    by_hours = WT.add_working_hours(start, 10 * days)
    by_days = WT.add_working_days(start, days)
    assert WT.next_working_time(by_hours) == by_days
