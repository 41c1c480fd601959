"""Report periods: date ranges in the school's calendar, and its terms and years."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

LONGEST_RANGE_DAYS = 5 * 366  # a report covers at most about five school years


@dataclass(frozen=True)
class DateRange:
    """Whole days in the school's calendar, `first` to `last` inclusive."""

    first: dt.date
    last: dt.date
    name: str = ""  # e.g. "Autumn term 2025"

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the range ends ({self.last}) before it starts ({self.first})")

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """The range as UTC instants [start, end): local midnight to the midnight after."""
        return local_midnight(self.first, zone), local_midnight(
            self.last + dt.timedelta(days=1), zone
        )

    @property
    def months(self) -> list[dt.date]:
        """The first day of each calendar month the range touches."""
        months = []
        month = self.first.replace(day=1)
        while month <= self.last:
            months.append(month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return months

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def key(self) -> str:
        """The range as the audit log and file names give it: 2025-09-01..2025-12-31."""
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def describe(self) -> str:
        """The range as a person reads it: "1 Sep 2025 to 31 Dec 2025"."""
        return f"{_day(self.first)} to {_day(self.last)}"


def _day(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant a school day begins (local midnight)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def term_of(day: dt.date) -> DateRange:
    """The English school term a date falls in, by a simple fixed rule.

    Autumn 1 September to 31 December, spring 1 January to 31 March, summer 1 April to
    31 August (holidays included: a concern in the holidays belongs to the term before).
    """
    if day.month >= 9:
        return DateRange(
            dt.date(day.year, 9, 1), dt.date(day.year, 12, 31), f"Autumn term {day.year}"
        )
    if day.month <= 3:
        return DateRange(
            dt.date(day.year, 1, 1), dt.date(day.year, 3, 31), f"Spring term {day.year}"
        )
    return DateRange(dt.date(day.year, 4, 1), dt.date(day.year, 8, 31), f"Summer term {day.year}")


def previous_term(day: dt.date) -> DateRange:
    """The term before the one `day` falls in."""
    return term_of(term_of(day).first - dt.timedelta(days=1))


def school_year_of(day: dt.date) -> DateRange:
    """The school year (1 September to 31 August) a date falls in."""
    start = day.year if day.month >= 9 else day.year - 1
    return DateRange(
        dt.date(start, 9, 1),
        dt.date(start + 1, 8, 31),
        f"School year {start}/{(start + 1) % 100:02d}",
    )
