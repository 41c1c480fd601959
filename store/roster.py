"""Staff and pupil rosters, imported from the school's MIS as CSV (DESIGN §8).

Imports are idempotent: staff are keyed by (workspace, lower-cased email), pupils by
(workspace, UPN); a re-import updates changed rows and counts unchanged ones. A bad row
is reported with its line in the file and skipped; good rows are kept. A whole-file
problem (unreadable, empty, a required column missing) raises `RosterFileError` and
nothing is stored.

Pupil names never leave the database from here: nothing is logged, and a problem's
reason names the field (and the offending value only for non-name fields).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import datetime as dt
import functools
import io
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.access import ROLES
from store.db import SessionFactory, transaction
from store.models import Pupil, Staff, StaffClass, Workspace, utcnow
from store.pupils import search_text
from store.staff import staff_by_email

R = TypeVar("R")
T = TypeVar("T")
SlackLookup = Callable[[str], Awaitable[str | None]]
ProgressCallback = Callable[[int], None]

STAFF_REQUIRED = ("email", "name", "roles", "classes")
STAFF_OPTIONAL = ("slack_user_id",)
PUPIL_REQUIRED = (
    "upn",
    "forename",
    "surname",
    "date_of_birth",
    "year_group",
    "registration_group",
)
PUPIL_OPTIONAL = ("preferred_name",)

BATCH_SIZE = 1000  # rows per INSERT/UPDATE statement batch
LOOKUP_CONCURRENCY = 4  # Slack lookups in flight at once
MAX_ECHO = 40  # longest offending value quoted back in a reason
EARLIEST_BIRTH = dt.date(1900, 1, 1)

NO_SLACK_ACCOUNT = "no Slack account with this email; they will not receive alerts"

_UPN = re.compile(r"[A-Z]\d{11}[A-Z0-9]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]+")
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME)
_UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})" + _TIME)
_HEADER_SEPARATORS = re.compile(r"[\s\-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class RowProblem:
    """A problem with one row: its line in the file (the header is line 1) and why."""

    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did, and which rows it rejected or warns about."""

    kind: str  # "staff" | "pupils"
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    encoding: str = "utf-8"

    @property
    def rejected(self) -> int:
        """How many rows were rejected."""
        return len(self.errors)

    def summary(self) -> str:
        """A human summary: counts, then one line per rejected row and per warning."""
        counts = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        if self.deactivated:
            counts += f", {self.deactivated} deactivated"
        head = f"{self.kind}: {counts}; {_plural(self.rejected, 'row')} rejected"
        if self.warnings:
            head += f", {_plural(len(self.warnings), 'warning')}"
        if self.encoding != "utf-8":
            head += f" (file read as {self.encoding})"
        lines = [head]
        lines += [f"  line {p.line}: {p.reason}" for p in sorted(self.errors, key=_by_line)]
        lines += [
            f"  line {p.line}: warning: {p.reason}" for p in sorted(self.warnings, key=_by_line)
        ]
        return "\n".join(lines)


class RosterFileError(Exception):
    """A problem with the whole file: unreadable, empty, or a required column missing."""


def _plural(count: int, noun: str) -> str:
    """`1 row`, `2 rows`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _by_line(problem: RowProblem) -> int:
    """Sort key for problems."""
    return problem.line


# ---------------------------------------------------------------- reading the file


@dataclass(frozen=True)
class _Record:
    """One non-blank data row: where it starts and its known columns' values."""

    line: int
    values: dict[str, str]
    problem: str | None = None  # the row does not line up with the header


@dataclass
class _Table:
    """A decoded, split CSV file: its encoding and its non-blank data records."""

    encoding: str
    records: list[_Record]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a RosterFileError saying why not."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise RosterFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding used: UTF-8 (BOM optional), UTF-16 with a BOM, or cp1252."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise RosterFileError("the file is not valid UTF-16 text") from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise RosterFileError("the file is neither UTF-8 nor Windows-1252 (cp1252) text") from exc


def _split(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = f"line {reader.line_num}: the file is not valid CSV ({exc})"
            raise RosterFileError(reason) from exc
        yield start, fields
        start = reader.line_num + 1


def _is_blank(fields: list[str]) -> bool:
    """True for a row with no content at all."""
    return not any(f.strip() for f in fields)


def _header_name(raw: str) -> str:
    """A header normalised for matching: trimmed, lower case, `Date of birth` -> `date_of_birth`."""
    return _HEADER_SEPARATORS.sub("_", raw.replace("\ufeff", "").strip().lower())


def _columns(
    header: list[str], *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, int]:
    """The position of each known column; a RosterFileError if a required one is missing."""
    positions: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _header_name(raw)
        if name not in required and name not in optional:
            continue
        if name in positions:
            raise RosterFileError(f"column '{name}' appears more than once in the header")
        positions[name] = index
    missing = [name for name in required if name not in positions]
    if missing:
        # The header is not echoed: in a file without one, the first line is a pupil.
        raise RosterFileError(
            f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            f"(the first line must be a header naming the columns: {', '.join(required)})"
        )
    return positions


def _shape_problem(fields: list[str], width: int) -> str | None:
    """Why a row's fields do not line up with the header, if they do not."""
    if len(fields) > width and not _is_blank(fields[width:]):
        return (
            f"the row has {len(fields)} fields but the header has {width} "
            "(is there an unquoted comma in a value?)"
        )
    return None


def _read_table(path: Path, *, required: tuple[str, ...], optional: tuple[str, ...]) -> _Table:
    """Decode and split a roster file into records keyed by known column names."""
    text, encoding = _decode(_read_bytes(path))
    rows = (row for row in _split(text) if not _is_blank(row[1]))
    first = next(rows, None)
    if first is None:
        raise RosterFileError("the file is empty (no header row)")
    columns = _columns(first[1], required=required, optional=optional)
    records = [
        _Record(
            line,
            {name: (fields[i] if i < len(fields) else "") for name, i in columns.items()},
            _shape_problem(fields, len(first[1])),
        )
        for line, fields in rows
    ]
    return _Table(encoding, records)


def count_rows(path: Path) -> int:
    """The number of non-blank data rows in a roster file (for a progress bar's total)."""
    text, _encoding = _decode(_read_bytes(path))
    rows = sum(1 for _line, fields in _split(text) if not _is_blank(fields))
    return max(0, rows - 1)


# ---------------------------------------------------------------- field checks


@functools.cache
def _max_length(model: type[Any], column: str) -> int:
    """The declared length of a string column, so checks follow the model."""
    return int(model.__table__.c[column].type.length)


def _echo(value: str) -> str:
    """A value quoted back in a reason, shortened."""
    return value if len(value) <= MAX_ECHO else value[: MAX_ECHO - 1] + "…"


def _clean(value: str) -> str:
    """Trimmed, NFC-normalised, with runs of whitespace (line breaks too) made one space."""
    return " ".join(unicodedata.normalize("NFC", value).split())


class _Checker:
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


def _date_of_birth(check: _Checker, *, today: dt.date) -> dt.date | None:
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


def _upn(check: _Checker) -> str | None:
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


def _email(check: _Checker) -> str | None:
    """The email field, lower-cased, with a plausible shape and length."""
    raw = check.values.get("email", "").strip()
    value = raw.lower()
    limit = _max_length(Staff, "email")
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


def _roles(check: _Checker) -> str | None:
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


def _classes(check: _Checker) -> frozenset[str] | None:
    """The classes field: the registration groups this person teaches."""
    groups = _split_list(check.values.get("classes", ""))
    limit = _max_length(StaffClass, "registration_group")
    too_long = [group for group in groups if len(group) > limit]
    if too_long:
        check.fail(f"class '{_echo(too_long[0])}' is longer than {limit} characters")
        return None
    if any(_CONTROL.search(group) for group in groups):
        check.fail("classes contains a control character")
        return None
    return frozenset(groups)


def _slack_user_id(check: _Checker) -> str | None:
    """The optional slack_user_id field (`U…` or `W…`); None when empty or invalid."""
    raw = check.values.get("slack_user_id", "").strip()
    value = raw.upper()
    if value and (
        len(value) > _max_length(Staff, "slack_user_id") or not _SLACK_ID.fullmatch(value)
    ):
        check.fail(f"slack_user_id '{_echo(raw)}' is not a Slack user id (U… or W…)")
        return None
    return value or None


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class _PupilRow:
    """A valid pupil row: its line, UPN and the columns to store (search_text included)."""

    line: int
    upn: str
    values: dict[str, Any]


@dataclass(frozen=True)
class _StaffRow:
    """A valid staff row (slack_user_id as given in the file)."""

    line: int
    email: str
    name: str
    roles: str
    classes: frozenset[str]
    slack_user_id: str | None


def _pupil_row(record: _Record, *, today: dt.date) -> tuple[str | None, _PupilRow | str]:
    """The row's UPN (if valid) and either the valid row or the reason it is rejected."""
    check = _Checker(record.values)
    values: dict[str, Any] = {"upn": _upn(check)}
    for column in ("forename", "surname", "preferred_name"):
        limit = _max_length(Pupil, column)
        values[column] = check.text(column, limit=limit, required=column != "preferred_name")
    values["date_of_birth"] = _date_of_birth(check, today=today)
    for column in ("year_group", "registration_group"):
        values[column] = check.text(column, limit=_max_length(Pupil, column))
    upn = values["upn"]
    if check.problems:
        return upn, "; ".join(check.problems)
    names = {k: values[k] for k in ("upn", "forename", "surname", "preferred_name")}
    values["search_text"] = search_text(**names)
    if len(values["search_text"]) > _max_length(Pupil, "search_text"):
        return upn, "the names are too long to index for search"
    return upn, _PupilRow(record.line, upn, values)


def _staff_row(record: _Record) -> tuple[str | None, _StaffRow | str]:
    """The row's email (if valid) and either the valid row or the reason it is rejected."""
    check = _Checker(record.values)
    email = _email(check)
    name = check.text("name", limit=_max_length(Staff, "name"))
    roles = _roles(check)
    classes = _classes(check)
    slack_user_id = _slack_user_id(check)
    if check.problems:
        return email, "; ".join(check.problems)
    row = _StaffRow(record.line, email, name, roles, classes, slack_user_id)  # type: ignore[arg-type]
    return email, row


def _keep_valid(
    table: _Table,
    parse: Callable[[_Record], tuple[str | None, R | str]],
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


# ---------------------------------------------------------------- progress


class _Progress:
    """Reports rows processed to an optional callback (tqdm's `update` fits)."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.remaining = total

    def advance(self, count: int) -> None:
        """Report `count` more rows processed."""
        count = min(count, self.remaining)
        if count > 0:
            self.remaining -= count
            if self.callback is not None:
                self.callback(count)

    def finish(self) -> None:
        """Report every row not yet reported."""
        self.advance(self.remaining)


def _batches(items: list[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _check_workspace(session: AsyncSession, workspace_id: int) -> None:
    """Raise ValueError when the workspace does not exist."""
    found = await session.scalar(select(Workspace.id).where(Workspace.id == workspace_id))
    if found is None:
        raise ValueError(f"no workspace with id {workspace_id}")


# ---------------------------------------------------------------- pupils

_PUPIL_FIELDS = (
    "upn",
    "forename",
    "surname",
    "preferred_name",
    "date_of_birth",
    "year_group",
    "registration_group",
    "search_text",
)


async def _existing_pupils(
    session: AsyncSession, workspace_id: int
) -> dict[str, tuple[int, dict[str, Any]]]:
    """Every pupil of the workspace by UPN: id and stored columns (one query)."""
    columns = [getattr(Pupil, name) for name in _PUPIL_FIELDS]
    result = await session.execute(
        select(Pupil.id, *columns).where(Pupil.workspace_id == workspace_id)
    )
    existing: dict[str, tuple[int, dict[str, Any]]] = {}
    for pupil_id, *values in result.all():
        stored = dict(zip(_PUPIL_FIELDS, values, strict=True))
        existing[str(stored["upn"]).upper()] = (pupil_id, stored)
    return existing


def _plan_pupils(
    rows: list[_PupilRow],
    existing: dict[str, tuple[int, dict[str, Any]]],
    *,
    workspace_id: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Rows to insert, rows to update (by id), and how many are unchanged."""
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        values = row.values
        if row.upn not in existing:
            inserts.append({"workspace_id": workspace_id, **values, "updated_at": now})
            continue
        pupil_id, stored = existing[row.upn]
        if stored == values:
            unchanged += 1
        else:
            updates.append({"id": pupil_id, **values, "updated_at": now})
    return inserts, updates, unchanged


async def _write_pupils(
    session: AsyncSession,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    progress: _Progress,
) -> None:
    """Insert and update pupils in batches (executemany), reporting progress."""
    for batch in _batches(inserts):
        await session.execute(insert(Pupil), batch)
        progress.advance(len(batch))
    for batch in _batches(updates):
        await session.execute(update(Pupil), batch)
        progress.advance(len(batch))


async def import_pupils(
    session_factory: SessionFactory,
    *,
    workspace_id: int,
    path: Path,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Create or update the workspace's pupils from a roster CSV, in one transaction."""
    table = _read_table(path, required=PUPIL_REQUIRED, optional=PUPIL_OPTIONAL)
    today = dt.date.today()
    rows, errors = _keep_valid(table, lambda r: _pupil_row(r, today=today), label="upn")
    report = ImportReport(kind="pupils", errors=errors, encoding=table.encoding)
    tracker = _Progress(progress, len(table.records))
    async with transaction(session_factory) as session:
        await _check_workspace(session, workspace_id)
        existing = await _existing_pupils(session, workspace_id)
        inserts, updates, report.unchanged = _plan_pupils(rows, existing, workspace_id=workspace_id)
        await _write_pupils(session, inserts, updates, tracker)
    report.created, report.updated = len(inserts), len(updates)
    tracker.finish()
    return report


# ---------------------------------------------------------------- staff


async def _lookup_all(
    rows: list[_StaffRow], lookup: SlackLookup, progress: _Progress
) -> dict[str, str | None]:
    """Slack user ids by email for `rows`, a few lookups at a time."""
    limit = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def one(row: _StaffRow) -> str | None:
        async with limit:
            found = await lookup(row.email)
        progress.advance(1)
        return found

    tasks = [asyncio.ensure_future(one(row)) for row in rows]
    try:
        found = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return {row.email: slack_id for row, slack_id in zip(rows, found, strict=True)}


@dataclass
class _StaffPlan:
    """Each accepted row with the Slack user id it will have, plus problems found on the way."""

    rows: list[tuple[_StaffRow, str | None]] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    released: list[Staff] = field(default_factory=list)  # deactivated, Slack id moved on


def _resolve_slack_id(
    row: _StaffRow,
    current: Staff | None,
    found: dict[str, str | None] | None,
    warnings: list[RowProblem],
) -> str | None:
    """The Slack user id a row ends with: the file's, else the lookup's, else the stored one."""
    if row.slack_user_id:
        return row.slack_user_id
    stored = current.slack_user_id if current is not None else None
    if found is None:
        return stored
    if found.get(row.email):
        return found[row.email]
    if stored:
        reason = f"no Slack account with this email; keeping the Slack user on record ({stored})"
        warnings.append(RowProblem(row.line, reason))
        return stored
    warnings.append(RowProblem(row.line, NO_SLACK_ACCOUNT))
    return None


def _slack_id_conflict(
    accepted: list[tuple[_StaffRow, str | None]],
    existing: dict[str, Staff],
    releasable: dict[str, Staff],
) -> tuple[int, str] | None:
    """The first accepted row whose Slack id someone else keeps: its index and the reason.

    Staff not updated by the file keep theirs (unless they are being deactivated, see
    `releasable`); rows keeping their stored id come first; then the file's order.
    """
    emails = {row.email for row, _slack_id in accepted}
    owners = {
        staff.slack_user_id: f"already belongs to {staff.email}"
        for email, staff in existing.items()
        if staff.slack_user_id and email not in emails and staff.slack_user_id not in releasable
    }

    def keeps(item: tuple[int, tuple[_StaffRow, str | None]]) -> bool:
        row, slack_id = item[1]
        stored = existing.get(row.email)
        return stored is not None and stored.slack_user_id == slack_id

    ordered = sorted(enumerate(accepted), key=lambda item: not keeps(item))
    for index, (row, slack_id) in ordered:
        if not slack_id:
            continue
        if slack_id in owners:
            return index, f"slack_user_id {slack_id} {owners[slack_id]}"
        owners[slack_id] = f"is already given to line {row.line}"
    return None


def _plan_staff(
    rows: list[_StaffRow],
    existing: dict[str, Staff],
    *,
    found: dict[str, str | None] | None,
    present: set[str],
    deactivate_missing: bool,
) -> _StaffPlan:
    """Final Slack ids for each row; a row taking a Slack id someone keeps is rejected."""
    plan = _StaffPlan()
    warnings: list[RowProblem] = []
    accepted = [
        (row, _resolve_slack_id(row, existing.get(row.email), found, warnings)) for row in rows
    ]
    releasable = {
        staff.slack_user_id: staff
        for email, staff in existing.items()
        if deactivate_missing and staff.slack_user_id and email not in present
    }
    while conflict := _slack_id_conflict(accepted, existing, releasable):
        index, reason = conflict
        plan.errors.append(RowProblem(accepted.pop(index)[0].line, reason))
    lines = {row.line for row, _slack_id in accepted}
    plan.warnings = [w for w in warnings if w.line in lines]
    for row, slack_id in accepted:
        holder = releasable.get(slack_id) if slack_id else None
        if holder is not None:
            plan.released.append(holder)
            reason = f"Slack user {slack_id} moved here from {holder.email} (deactivated)"
            plan.warnings.append(RowProblem(row.line, reason))
    plan.rows = accepted
    return plan


def _new_staff(row: _StaffRow, slack_id: str | None, workspace_id: int) -> Staff:
    """A new Staff row with its classes."""
    return Staff(
        workspace_id=workspace_id,
        email=row.email,
        name=row.name,
        roles=row.roles,
        slack_user_id=slack_id,
        active=True,
        classes=[
            StaffClass(registration_group=group, workspace_id=workspace_id)
            for group in sorted(row.classes)
        ],
    )


def _update_staff(staff: Staff, row: _StaffRow, slack_id: str | None) -> bool:
    """Bring an existing Staff row in line with the file; True if anything changed."""
    changed = False
    for name, value in (
        ("email", row.email),
        ("name", row.name),
        ("roles", row.roles),
        ("slack_user_id", slack_id),
        ("active", True),
    ):
        if getattr(staff, name) != value:
            setattr(staff, name, value)
            changed = True
    current = {c.registration_group for c in staff.classes}
    if current != row.classes:
        for link in [c for c in staff.classes if c.registration_group not in row.classes]:
            staff.classes.remove(link)
        for group in sorted(row.classes - current):
            staff.classes.append(
                StaffClass(registration_group=group, workspace_id=staff.workspace_id)
            )
        changed = True
    return changed


async def _release_slack_ids(
    session: AsyncSession, plan: _StaffPlan, existing: dict[str, Staff]
) -> None:
    """Clear Slack ids that move between people first, so no unique index trips mid-way."""
    moving = [
        existing[row.email]
        for row, slack_id in plan.rows
        if row.email in existing
        and existing[row.email].slack_user_id
        and existing[row.email].slack_user_id != slack_id
    ]
    for staff in [*moving, *plan.released]:
        staff.slack_user_id = None
    if moving or plan.released:
        await session.flush()


def _deactivate(existing: dict[str, Staff], present: set[str]) -> int:
    """Mark active staff absent from the file inactive; how many were."""
    count = 0
    for email, staff in existing.items():
        if staff.active and email not in present:
            staff.active = False
            count += 1
    return count


async def _apply_staff(
    session: AsyncSession,
    plan: _StaffPlan,
    existing: dict[str, Staff],
    *,
    workspace_id: int,
    report: ImportReport,
) -> None:
    """Create, update or leave each planned row, counting into `report`."""
    await _release_slack_ids(session, plan, existing)
    for row, slack_id in plan.rows:
        current = existing.get(row.email)
        if current is None:
            session.add(_new_staff(row, slack_id, workspace_id))
            report.created += 1
        elif _update_staff(current, row, slack_id):
            report.updated += 1
        else:
            report.unchanged += 1


def _present_emails(table: _Table) -> set[str]:
    """Every email in the file, valid row or not: those staff are not 'missing'."""
    emails = (record.values.get("email", "").strip().lower() for record in table.records)
    return {email for email in emails if email}


async def import_staff(
    session_factory: SessionFactory,
    *,
    workspace_id: int,
    path: Path,
    lookup_slack_id: SlackLookup | None = None,
    deactivate_missing: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Create or update the workspace's staff (roles, classes, Slack ids) from a roster CSV."""
    table = _read_table(path, required=STAFF_REQUIRED, optional=STAFF_OPTIONAL)
    if deactivate_missing and len(table.records) == 0:
        raise RosterFileError("the file has no staff rows; refusing to deactivate everyone")
    rows, errors = _keep_valid(table, _staff_row, label="email")
    report = ImportReport(kind="staff", errors=errors, encoding=table.encoding)
    tracker = _Progress(progress, len(table.records))
    to_find = [row for row in rows if not row.slack_user_id] if lookup_slack_id else []
    tracker.advance(len(table.records) - len(to_find))
    found = await _lookup_all(to_find, lookup_slack_id, tracker) if lookup_slack_id else None
    present = _present_emails(table)
    async with transaction(session_factory) as session:
        await _check_workspace(session, workspace_id)
        existing = await staff_by_email(session, workspace_id=workspace_id)
        plan = _plan_staff(
            rows, existing, found=found, present=present, deactivate_missing=deactivate_missing
        )
        await _apply_staff(session, plan, existing, workspace_id=workspace_id, report=report)
        if deactivate_missing:
            report.deactivated = _deactivate(existing, present)
    report.errors = sorted([*report.errors, *plan.errors], key=_by_line)
    report.warnings = sorted(plan.warnings, key=_by_line)
    tracker.finish()
    return report
