"""Checking a roster row's fields: each check records a reason, never a name.

A reason names the field, and quotes the offending value (shortened) only for fields
that are not names: a UPN, a date, an email, a role, a class, a Slack id.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

from store import pupil_context
from store.access import ROLES
from store.models import Staff, StaffClass
from store.roster.csvfile import Record, Table
from store.roster.report import RowProblem

R = TypeVar("R")

MAX_ECHO = 40  # longest offending value quoted back in a reason
EARLIEST_BIRTH = dt.date(1900, 1, 1)

_UPN = re.compile(r"[A-Z]\d{11}[A-Z0-9]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]+")
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME)
_UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})" + _TIME)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@functools.cache
def max_length(model: type[Any], column: str) -> int:
    """The declared length of a string column, so checks follow the model."""
    return int(model.__table__.c[column].type.length)


def _echo(value: str) -> str:
    """A value quoted back in a reason, shortened."""
    return value if len(value) <= MAX_ECHO else value[: MAX_ECHO - 1] + "…"


def _clean(value: str) -> str:
    """Trimmed, NFC-normalised, with runs of whitespace (line breaks too) made one space."""
    return " ".join(unicodedata.normalize("NFC", value).split())


class Checker:
    """Collects a row's problems while its fields are checked."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.problems: list[str] = []

    def fail(self, reason: str) -> None:
        """Record a problem with this row."""
        self.problems.append(reason)

    def text(self, column: str, *, limit: int, required: bool = True) -> str | None:
        """A cleaned text field; never echoes the value (it may be a name)."""
        value = _clean(self.values.get(column, ""))
        if not value:
            if required:
                self.fail(f"{column} is empty")
            return None
        if len(value) > limit:
            self.fail(f"{column} is longer than {limit} characters")
            return None
        if _CONTROL.search(value):
            self.fail(f"{column} contains a control character")
            return None
        return value


def _parse_date(raw: str) -> dt.date | None:
    """A date from `YYYY-MM-DD` or `DD/MM/YYYY` (a trailing time is ignored); None if not."""
    if match := _ISO_DATE.fullmatch(raw):
        year, month, day = match.groups()
    elif match := _UK_DATE.fullmatch(raw):
        day, month, year = match.groups()
    else:
        return None
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def date_of_birth(check: Checker, *, today: dt.date) -> dt.date | None:
    """The date_of_birth field: ISO or UK format, a real date, not in the future."""
    raw = check.values.get("date_of_birth", "").strip()
    if not raw:
        check.fail("date_of_birth is empty")
        return None
    value = _parse_date(raw)
    if value is None:
        check.fail(f"date_of_birth '{_echo(raw)}' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")
    elif value > today:
        check.fail(f"date_of_birth '{_echo(raw)}' is in the future")
    elif value < EARLIEST_BIRTH:
        check.fail(f"date_of_birth '{_echo(raw)}' is not a plausible date of birth")
    else:
        return value
    return None


def upn(check: Checker) -> str | None:
    """The upn field: a letter, 11 digits, then a digit or letter; upper-cased."""
    raw = check.values.get("upn", "").strip()
    value = raw.upper()
    if not value:
        check.fail("upn is empty")
        return None
    if not _UPN.fullmatch(value):
        check.fail(
            f"upn '{_echo(raw)}' is not a UPN (13 characters: a letter, 11 digits, "
            "then a digit or letter)"
        )
        return None
    return value


def email(check: Checker) -> str | None:
    """The email field, lower-cased, with a plausible shape and length."""
    raw = check.values.get("email", "").strip()
    value = raw.lower()
    limit = max_length(Staff, "email")
    if not value:
        check.fail("email is empty")
    elif len(value) > limit:
        check.fail(f"email is longer than {limit} characters")
    elif _CONTROL.search(value):  # PostgreSQL cannot store a NUL, and no address has one
        check.fail("email contains a control character")
    elif not _EMAIL.fullmatch(value):
        check.fail(f"email '{_echo(raw)}' is not an email address")
    else:
        return value
    return None


def _split_list(raw: str) -> list[str]:
    """A `;`-separated list, cleaned, without empty items or repeats (first kept)."""
    items = (_clean(item) for item in raw.split(";"))
    return list(dict.fromkeys(item for item in items if item))


def roles(check: Checker) -> str | None:
    """The roles field as stored: known roles in `ROLES` order, `staff` when empty."""
    names = [name.lower() for name in _split_list(check.values.get("roles", ""))]
    unknown = [name for name in names if name not in ROLES]
    if unknown:
        quoted = ", ".join(f"'{_echo(name)}'" for name in unknown)
        check.fail(
            f"unknown role{'s' if len(unknown) > 1 else ''} {quoted} (allowed: {', '.join(ROLES)})"
        )
        return None
    return ";".join(role for role in ROLES if role in names) or "staff"


def classes(check: Checker) -> frozenset[str] | None:
    """The classes field: the registration groups this person teaches."""
    groups = _split_list(check.values.get("classes", ""))
    limit = max_length(StaffClass, "registration_group")
    too_long = [group for group in groups if len(group) > limit]
    if too_long:
        check.fail(f"class '{_echo(too_long[0])}' is longer than {limit} characters")
        return None
    if any(_CONTROL.search(group) for group in groups):
        check.fail("classes contains a control character")
        return None
    return frozenset(groups)


def slack_user_id(check: Checker) -> str | None:
    """The optional slack_user_id field (`U…` or `W…`); None when empty or invalid."""
    raw = check.values.get("slack_user_id", "").strip()
    value = raw.upper()
    if value and (
        len(value) > max_length(Staff, "slack_user_id") or not _SLACK_ID.fullmatch(value)
    ):
        check.fail(f"slack_user_id '{_echo(raw)}' is not a Slack user id (U… or W…)")
        return None
    return value or None


def context(check: Checker) -> dict[str, Any]:
    """The pupil context columns the file has (CP_Plan, SEN, Social_Worker...): each flag
    given, checked; a column the file lacks is not in the answer (its value is kept)."""
    found: dict[str, Any] = {}
    for flag, column in pupil_context.CSV_COLUMNS.items():
        if flag not in check.values:
            continue
        raw = check.values[flag]
        if flag == "social_worker":  # a name: never echoed
            found[flag] = check.text(flag, limit=pupil_context.SOCIAL_WORKER_MAX, required=False)
            if check.problems and check.problems[-1].startswith(flag):
                check.problems[-1] = column + check.problems[-1][len(flag) :]
        elif flag == "sen":
            level = pupil_context.sen_level(raw)
            if level is None:
                check.fail(
                    f"{column} '{_echo(raw.strip())}' is not N, K or E "
                    "(N: no SEN, K: SEN support, E: EHC plan)"
                )
            found[flag] = level
        else:
            answer = pupil_context.yes_no(raw)
            if answer is None:
                check.fail(
                    f"{column} '{_echo(raw.strip())}' is not yes or no "
                    "(Y/N, Yes/No, TRUE/FALSE, 1/0, or blank for no)"
                )
            found[flag] = answer
    return found


def keep_valid(
    table: Table,
    parse: Callable[[Record], tuple[str | None, R | str]],
    *,
    label: str,
) -> tuple[list[R], list[RowProblem]]:
    """Valid rows in file order, and the rejected ones; a repeated key rejects the later row."""
    rows: list[R] = []
    errors: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for record in table.records:
        if record.problem:
            errors.append(RowProblem(record.line, record.problem))
            continue
        key, parsed = parse(record)
        if key is not None and key in first_line:
            reason = f"{label} {key} is a duplicate of line {first_line[key]}"
            errors.append(RowProblem(record.line, reason))
            continue
        if key is not None:
            first_line[key] = record.line
        if isinstance(parsed, str):
            errors.append(RowProblem(record.line, parsed))
        else:
            rows.append(parsed)
    return rows, errors
