"""Dates typed into a page's filter (`?from=&to=`), read as the school writes them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

EARLIEST, LATEST = dt.date(1990, 1, 1), dt.date(2100, 12, 31)


@dataclass(frozen=True)
class Dates:
    """The dates typed into a filter: as typed (to show again), as dates, and errors."""

    typed_from: str
    typed_to: str
    first: dt.date | None
    last: dt.date | None
    errors: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        found = {}
        if self.first:
            found["from"] = self.first.isoformat()
        if self.last:
            found["to"] = self.last.isoformat()
        return found


def read_dates(query: Any) -> Dates:
    """`from` and `to` (YYYY-MM-DD, inclusive) from a query string, each optional."""
    typed = {k: str(query.get(k, "")).strip()[:20] for k in ("from", "to")}
    found: dict[str, dt.date | None] = {"from": None, "to": None}
    errors: dict[str, str] = {}
    for key, label in (("from", "start"), ("to", "end")):
        if not typed[key]:
            continue
        try:
            day = dt.date.fromisoformat(typed[key])
        except ValueError:
            errors[key] = f"Enter the {label} date as a date, for example 2025-09-01."
            continue
        if EARLIEST <= day <= LATEST:
            found[key] = day
        else:
            errors[key] = f"Enter a {label} date between {EARLIEST.year} and {LATEST.year}."
    first, last = found["from"], found["to"]
    if first and last and last < first:
        errors["to"] = "The end date must be on or after the start date."
    return Dates(typed["from"], typed["to"], first, last, errors)
