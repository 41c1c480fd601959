"""Working-day and working-hour arithmetic for agency timescales (DESIGN §6).

Pure: no I/O and no clock reads; every function takes the instants it needs. Instants
passed in must be timezone-aware; instants returned are aware UTC datetimes.

The rules:

- A *working day* is a local calendar date that is Monday to Friday, not a bank holiday
  in the configured region (the `holidays` package, substitute days included) and not a
  school closure date.
- *Working time* is, on a working day, from `day_starts` (included) to `day_ends`
  (excluded), in local wall-clock time in `timezone`, whatever the UTC offset that day:
  08:00 is 08:00 in GMT and in BST.
- Wall-clock times become instants through zoneinfo: an ambiguous time (clocks going
  back) means the first occurrence; a time skipped by the clocks going forward means the
  instant as long after the change as the time is after the gap's start.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

REGIONS = {"ENG": "England", "WLS": "Wales", "SCT": "Scotland", "NIR": "Northern Ireland"}
_REGION_NAMES = {
    "england and wales": "ENG",
    "england": "ENG",
    "wales": "WLS",
    "scotland": "SCT",
    "northern ireland": "NIR",
}
# Longest run of non-working days searched before giving up (a mistaken closure list).
_SEARCH_LIMIT_DAYS = 3660


def normalise_region(text: str) -> str:
    """The bank-holiday region code (ENG, WLS, SCT, NIR) for a code or name; else ValueError."""
    key = text.strip()
    if key.upper() in REGIONS:
        return key.upper()
    try:
        return _REGION_NAMES[key.casefold()]
    except KeyError:
        known = ", ".join([*REGIONS, '"England and Wales"'])
        raise ValueError(f"unknown bank-holiday region {text!r}; expected one of {known}") from None


@functools.lru_cache(maxsize=128)
def _bank_holidays(region: str, year: int) -> frozenset[dt.date]:
    """The bank holidays (substitute days included) of one region and year."""
    return frozenset(holidays.country_holidays("GB", subdiv=region, years=year))


def zone_of(name: str) -> ZoneInfo:
    """The zoneinfo time zone called `name`; ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (expected e.g. Europe/London)") from None


@dataclass(frozen=True)
class WorkingTime:
    """A school's working days and hours: weekdays, bank holidays, closures, local hours."""

    timezone: str = "Europe/London"
    day_starts: dt.time = dt.time(8, 0)
    day_ends: dt.time = dt.time(18, 0)
    region: str = "ENG"
    closures: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        zone_of(self.timezone)
        if self.day_starts.tzinfo is not None or self.day_ends.tzinfo is not None:
            raise ValueError("day_starts and day_ends are local wall-clock times, without tzinfo")
        if self.day_ends <= self.day_starts:
            raise ValueError(f"day_ends {self.day_ends} must be after day_starts {self.day_starts}")
        object.__setattr__(self, "region", normalise_region(self.region))
        closures: Iterable[dt.date] = self.closures
        object.__setattr__(self, "closures", frozenset(closures))

    @property
    def zone(self) -> ZoneInfo:
        """The school's time zone."""
        return zone_of(self.timezone)

    def _local(self, instant: dt.datetime) -> dt.datetime:
        """The instant in local wall-clock time; naive datetimes are refused."""
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"naive datetime {instant!r}: pass a timezone-aware datetime")
        return instant.astimezone(self.zone)

    def _at(self, day: dt.date, time: dt.time) -> dt.datetime:
        """The UTC instant of a local wall-clock time on a local date."""
        return dt.datetime.combine(day, time, tzinfo=self.zone).astimezone(dt.UTC)

    def _opens(self, day: dt.date) -> dt.datetime:
        """The instant working time starts on `day` (day_starts, local)."""
        return self._at(day, self.day_starts)

    def _closes(self, day: dt.date) -> dt.datetime:
        """The instant working time ends on `day` (day_ends, local)."""
        return self._at(day, self.day_ends)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether `day` is a weekday that is neither a bank holiday nor a closure date."""
        return (
            day.weekday() < 5
            and day not in self.closures
            and day not in _bank_holidays(self.region, day.year)
        )

    def is_bank_holiday(self, day: dt.date) -> bool:
        """Whether `day` is a public (bank) holiday in the school's region."""
        return day in _bank_holidays(self.region, day.year)

    def is_holiday(self, day: dt.date) -> bool:
        """Whether `day` is a bank holiday or a school closure date (whatever its weekday)."""
        return day in self.closures or day in _bank_holidays(self.region, day.year)

    def local_wall_clock(self, instant: dt.datetime) -> dt.datetime:
        """The instant as a naive local wall-clock datetime in the school's time zone."""
        return self._local(instant).replace(tzinfo=None)

    def is_working_time(self, instant: dt.datetime) -> bool:
        """Whether the instant is on a working day, from day_starts (incl.) to day_ends (excl.)."""
        day = self._local(instant).date()
        return self.is_working_day(day) and self._opens(day) <= instant < self._closes(day)

    def working_day_of(self, instant: dt.datetime) -> dt.date:
        """The local calendar date of the instant (the key for "once per working day")."""
        return self._local(instant).date()

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after `day`."""
        for offset in range(1, _SEARCH_LIMIT_DAYS + 1):
            candidate = day + dt.timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day in the {_SEARCH_LIMIT_DAYS} days after {day}")

    def next_working_time(self, instant: dt.datetime) -> dt.datetime:
        """The instant itself if it is working time, else the start of the next working time."""
        day = self._local(instant).date()
        if self.is_working_day(day):
            if instant < self._opens(day):
                return self._opens(day)
            if instant < self._closes(day):
                return instant.astimezone(dt.UTC)
        return self._opens(self.next_working_day(day))

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """The same local time of day `days` working days later, counting from working time.

        Precisely: let `s = next_working_time(start)` (a start outside working time rolls
        forward to the next day_starts), with local date D and local time of day T. The
        result is local time T on the working day reached by stepping `days` working days
        on from D (`days == 0` gives `s`). T lies in [day_starts, day_ends), so the result
        is always working time; should a clock change push it past the day's day_ends, the
        result is that day_ends. Examples (08:00-18:00): Friday 15:00 + 1 is Monday 15:00;
        Friday 19:00 + 1 and Monday 07:00 + 1 are both Tuesday 08:00.
        """
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        begin = self._local(self.next_working_time(start))
        day = begin.date()
        for _ in range(days):
            day = self.next_working_day(day)
        return min(self._at(day, begin.time()), self._closes(day))

    def add_working_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The earliest instant by which `hours` of working time have passed since `start`.

        Counting begins at `next_working_time(start)` and runs only in working time, in
        real elapsed hours (a working day is day_starts..day_ends local, however long that
        is in UTC). A result that uses up a day exactly is that day's day_ends, not the next
        day's day_starts: Monday 14:00 + 4 is Monday 18:00; Friday 16:00 + 4 is Monday
        10:00; Friday 19:00 + 10 is Monday 18:00. `hours == 0` gives the counting start.
        """
        if not (math.isfinite(hours) and hours >= 0):
            raise ValueError(f"hours must be a non-negative number, got {hours}")
        remaining = dt.timedelta(hours=hours)
        current = self.next_working_time(start)
        while True:
            day = self._local(current).date()
            available = self._closes(day) - current
            if remaining <= available:
                return current + remaining
            remaining -= available
            current = self._opens(self.next_working_day(day))

    def working_days_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """How many working days have begun after `start`'s local date, up to `end`'s.

        Precisely: the number of working days W with local date of `start` < W <= local
        date of `end` (0 when `end` is not after `start`). For "working days overdue",
        pass the due time and now: 0 all through the due day, 1 from the next working
        day's midnight, and weekends, bank holidays and closures do not count. Due
        Friday 15:00: Friday 17:00 gives 0, Saturday 0, Monday 08:00 1, Tuesday 2.
        """
        day = self._local(start).date()
        last = self._local(end).date()
        count = 0
        while day < last:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count
