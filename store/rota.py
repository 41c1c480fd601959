"""The on-call rota for urgent concerns (`[[on_call]]` in vigil.toml). Pure: no I/O, no clock.

A rota entry names a member of staff (by email) and when they are on duty: days of the
week and a local time span. A span whose `to` is not after its `from` runs overnight
into the next day (`from == to` is the whole 24 hours), and belongs to the day it
starts. `holidays` says whether the entry also covers bank holidays and closure dates
(`store.workdays.WorkingTime.is_holiday`): "no" (the default: not on those days), "yes"
(on those days too) or "only" (only on those days).

`urgent_plan` is the one place that decides who an urgent concern reaches, and in what
order; `step_recipients` says who each escalation step tells.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from store.workdays import WorkingTime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Holidays = Literal["no", "yes", "only"]

# Roles that make someone the fallback when nobody is on duty, then the last stage.
DSL_ROLE, HEAD_ROLE = "dsl", "head"


@dataclass(frozen=True)
class OnCall:
    """One `[[on_call]]` entry: who (an email) and when."""

    staff: str
    days: frozenset[int] = frozenset(range(7))  # 0 is Monday
    starts: dt.time = dt.time(0, 0)
    ends: dt.time = dt.time(0, 0)
    holidays: Holidays = "no"

    def __post_init__(self) -> None:
        object.__setattr__(self, "staff", self.staff.strip().lower())
        object.__setattr__(self, "days", frozenset(self.days))

    @property
    def overnight(self) -> bool:
        """Whether the span runs past midnight (or is the whole day)."""
        return self.ends <= self.starts

    def _applies_on(self, day: dt.date, working: WorkingTime) -> bool:
        if day.weekday() not in self.days:
            return False
        holiday = working.is_holiday(day)
        return {"no": not holiday, "yes": True, "only": holiday}[self.holidays]

    def covers(self, instant: dt.datetime, working: WorkingTime) -> bool:
        """Whether this entry is on duty at `instant` (local wall-clock time)."""
        local = working.local_wall_clock(instant)
        for day in (local.date(), local.date() - dt.timedelta(days=1)):
            begin = dt.datetime.combine(day, self.starts)
            end = dt.datetime.combine(day + dt.timedelta(days=self.overnight), self.ends)
            if begin <= local < end and self._applies_on(day, working):
                return True
        return False


@dataclass(frozen=True)
class Person:
    """What the rota needs of a member of staff."""

    staff_id: int
    email: str
    roles: frozenset[str] = field(default_factory=frozenset)
    keyholder: bool = False


def on_duty(rota: Sequence[OnCall], at: dt.datetime, working: WorkingTime) -> list[str]:
    """The emails of the people on duty at `at`, in rota order, each once."""
    return list(dict.fromkeys(entry.staff for entry in rota if entry.covers(at, working)))


def urgent_plan(
    *,
    rota: Sequence[OnCall],
    at: dt.datetime,
    working: WorkingTime,
    staff: Iterable[Person],
    exclude: Collection[int] = (),
) -> list[list[int]]:
    """Who an urgent concern reaches at `at`, stage by stage (staff ids, each once overall).

    Stage 0 is told at once: the first person on duty (rota order) who is on the staff
    list; if nobody is, every `dsl`. Then, one stage per escalation: the rest of the rota
    (others on duty now first, then everyone else it names), then the head(s). Empty
    stages are left out (stage 0 is always there, perhaps empty). `exclude` is never
    told (the reporter; whoever else the caller must keep out).
    """
    people = list(staff)
    by_email = {p.email.strip().lower(): p.staff_id for p in people}
    told: set[int] = set(exclude)

    def fresh(ids: Iterable[int]) -> list[int]:
        chosen = [i for i in dict.fromkeys(ids) if i not in told]
        told.update(chosen)
        return chosen

    duty = [by_email[e] for e in on_duty(rota, at, working) if e in by_email]
    duty = [i for i in duty if i not in told]
    first = (
        fresh(duty[:1])
        or fresh(p.staff_id for p in people if DSL_ROLE in p.roles)
        or fresh(p.staff_id for p in people if p.keyholder)
    )
    rest = [by_email[e.staff] for e in rota if e.staff in by_email]
    later = [fresh(duty[1:] + rest), fresh(p.staff_id for p in people if HEAD_ROLE in p.roles)]
    return [first, *(stage for stage in later if stage)]


def step_recipients(plan: Sequence[Sequence[int]], step: int) -> list[int]:
    """Who escalation step `step` (1, 2, ...) tells: every stage up to `step`, so each
    step reminds those told before and reaches the next stage; the last repeats."""
    reached = plan[: max(0, step) + 1]
    return list(dict.fromkeys(i for stage in reached for i in stage))
