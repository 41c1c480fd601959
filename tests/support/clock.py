"""School time: London wall-clock times, working days, and moving the server's clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from store.workdays import WorkingTime
from testing.harness import Harness

LONDON = ZoneInfo("Europe/London")
WORKING = WorkingTime()  # the defaults: 08:00-18:00 London, England's bank holidays


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A London wall-clock time on `day`, as an aware UTC instant."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON).astimezone(dt.UTC)


def form_time(value: dt.datetime) -> str:
    """`value` in school time, as a `datetime-local` form field holds it."""
    return value.astimezone(LONDON).strftime("%Y-%m-%dT%H:%M")


def move_clock(harness: Harness, instant: dt.datetime) -> None:
    """Set the server's clock to `instant` (always forward: queued messages stay due)."""
    assert instant >= harness.now(), "the clock only moves forward in these tests"
    harness.clock_offset = instant - dt.datetime.now(dt.UTC)
