"""The pupil roster import: keyed by (workspace, UPN), written in batches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import workspaces
from store.db import SessionFactory, transaction
from store.models import Pupil, utcnow
from store.pupils import search_text
from store.roster import fields
from store.roster.csvfile import Record, read_table
from store.roster.progress import Progress, ProgressCallback, batches
from store.roster.report import ImportReport

PUPIL_REQUIRED = (
    "upn",
    "forename",
    "surname",
    "date_of_birth",
    "year_group",
    "registration_group",
)
PUPIL_OPTIONAL = ("preferred_name",)


@dataclass(frozen=True)
class _PupilRow:
    """A valid pupil row: its line, UPN and the columns to store (search_text included)."""

    line: int
    upn: str
    values: dict[str, Any]


def _pupil_row(record: Record, *, today: dt.date) -> tuple[str | None, _PupilRow | str]:
    """The row's UPN (if valid) and either the valid row or the reason it is rejected."""
    check = fields.Checker(record.values)
    values: dict[str, Any] = {"upn": fields.upn(check)}
    for column in ("forename", "surname", "preferred_name"):
        limit = fields.max_length(Pupil, column)
        values[column] = check.text(column, limit=limit, required=column != "preferred_name")
    values["date_of_birth"] = fields.date_of_birth(check, today=today)
    for column in ("year_group", "registration_group"):
        values[column] = check.text(column, limit=fields.max_length(Pupil, column))
    upn = values["upn"]
    if check.problems:
        return upn, "; ".join(check.problems)
    names = {k: values[k] for k in ("upn", "forename", "surname", "preferred_name")}
    values["search_text"] = search_text(**names)
    if len(values["search_text"]) > fields.max_length(Pupil, "search_text"):
        return upn, "the names are too long to index for search"
    return upn, _PupilRow(record.line, upn, values)


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
    progress: Progress,
) -> None:
    """Insert and update pupils in batches (executemany), reporting progress."""
    for batch in batches(inserts):
        await session.execute(insert(Pupil), batch)
        progress.advance(len(batch))
    for batch in batches(updates):
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
    table = read_table(path, required=PUPIL_REQUIRED, optional=PUPIL_OPTIONAL)
    today = dt.date.today()
    rows, errors = fields.keep_valid(table, lambda r: _pupil_row(r, today=today), label="upn")
    report = ImportReport(kind="pupils", errors=errors, encoding=table.encoding)
    tracker = Progress(progress, len(table.records))
    async with transaction(session_factory) as session:
        await workspaces.check_exists(session, workspace_id=workspace_id)
        existing = await _existing_pupils(session, workspace_id)
        inserts, updates, report.unchanged = _plan_pupils(rows, existing, workspace_id=workspace_id)
        await _write_pupils(session, inserts, updates, tracker)
    report.created, report.updated = len(inserts), len(updates)
    tracker.finish()
    return report
