"""The pupil roster import: keyed by (workspace, UPN), written in batches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring, pupil_context, workspaces
from store.crypto import Cipher
from store.db import SessionFactory, transaction
from store.models import Pupil, utcnow
from store.pupils import search_text
from store.roster import fields
from store.roster.csvfile import Record, read_table
from store.roster.progress import Progress, ProgressCallback, batches
from store.roster.report import ImportReport, RosterFileError

PUPIL_REQUIRED = (
    "upn",
    "forename",
    "surname",
    "date_of_birth",
    "year_group",
    "registration_group",
)
PUPIL_OPTIONAL = ("preferred_name",)
# The MIS's optional context columns, as headers match them (`CP_Plan` -> `cp_plan`).
PUPIL_CONTEXT = tuple(pupil_context.CSV_COLUMNS)


@dataclass(frozen=True)
class _PupilRow:
    """A valid pupil row: its line, UPN and the columns to store (search_text included)."""

    line: int
    upn: str
    values: dict[str, Any]
    context: dict[str, Any]  # the context columns the file has, checked


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
    context = fields.context(check)
    upn = values["upn"]
    if check.problems:
        return upn, "; ".join(check.problems)
    names = {k: values[k] for k in ("upn", "forename", "surname", "preferred_name")}
    values["search_text"] = search_text(**names)
    if len(values["search_text"]) > fields.max_length(Pupil, "search_text"):
        return upn, "the names are too long to index for search"
    return upn, _PupilRow(record.line, upn, values, context)


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


async def _mark_leavers(
    session: AsyncSession,
    *,
    workspace_id: int,
    seen: set[str],
    keep_missing: bool,
    today: dt.date,
    now: dt.datetime,
) -> tuple[int, int]:
    """Pupils missing from the file marked as left (unless `keep_missing`), and leavers
    found in it again back on the roster, each dated in their history: how many of each.

    A row rejected for a bad field still counts as the pupil being in the file."""
    result = await session.execute(
        select(Pupil.id, Pupil.upn, Pupil.left_on).where(Pupil.workspace_id == workspace_id)
    )
    leaving: list[int] = []
    back: list[int] = []
    for pupil_id, upn, left_on in result.all():
        present = str(upn).upper() in seen
        if left_on is None and not present and not keep_missing:
            leaving.append(pupil_id)
        elif left_on is not None and present:
            back.append(pupil_id)
    for ids, left_on in ((leaving, today), (back, None)):
        for batch in batches([{"id": i, "left_on": left_on} for i in ids]):
            await session.execute(update(Pupil), batch)
        pupil_context.record_leaving(
            session,
            workspace_id=workspace_id,
            pupil_ids=ids,
            left=left_on is not None,
            at=now,
        )
    return len(leaving), len(back)


async def _write_contexts(
    session: AsyncSession,
    rows: list[_PupilRow],
    *,
    workspace_id: int,
    cipher: Cipher | None,
    now: dt.datetime,
) -> int:
    """Store the context columns the file has, each change dated: how many pupils changed."""
    given = [row for row in rows if row.context]
    if not given:
        return 0
    if cipher is None:
        raise RosterFileError(
            "the file has pupil context columns (CP_Plan, SEN, Social_Worker...): "
            "importing them needs VIGIL_DATA_KEY, to encrypt what is sensitive"
        )
    ids = dict(
        (str(upn).upper(), pupil_id)
        for pupil_id, upn in (
            await session.execute(
                select(Pupil.id, Pupil.upn).where(Pupil.workspace_id == workspace_id)
            )
        ).all()
    )
    await keyring.ensure_data_key(session, cipher)
    stored = await pupil_context.stored_contexts(session, workspace_id=workspace_id, cipher=cipher)
    changed = 0
    for row in given:
        pupil_id = ids[row.upn]
        context_row, old = stored.get(pupil_id, (None, pupil_context.NOTHING))
        new = pupil_context.merged(old, row.context)
        if await pupil_context.set_context(
            session,
            workspace_id=workspace_id,
            pupil_id=pupil_id,
            row=context_row,
            old=old,
            new=new,
            cipher=cipher,
            source=pupil_context.IMPORT,
            at=now,
        ):
            changed += 1
    return changed


async def import_pupils(
    session_factory: SessionFactory,
    *,
    workspace_id: int,
    path: Path,
    progress: ProgressCallback | None = None,
    cipher: Cipher | None = None,
    keep_missing: bool = False,
) -> ImportReport:
    """Create or update the workspace's pupils from a roster CSV, in one transaction.

    Pupils missing from the file are marked as left, unless `keep_missing` (a partial
    file); context columns (CP_Plan, SEN, Social_Worker...) need `cipher`."""
    table = read_table(path, required=PUPIL_REQUIRED, optional=PUPIL_OPTIONAL + PUPIL_CONTEXT)
    today = dt.date.today()
    seen: set[str] = set()

    def parse(record: Record) -> tuple[str | None, _PupilRow | str]:
        upn, parsed = _pupil_row(record, today=today)
        if upn is not None:
            seen.add(upn)
        return upn, parsed

    rows, errors = fields.keep_valid(table, parse, label="upn")
    report = ImportReport(kind="pupils", errors=errors, encoding=table.encoding)
    tracker = Progress(progress, len(table.records))
    async with transaction(session_factory) as session:
        await workspaces.check_exists(session, workspace_id=workspace_id)
        existing = await _existing_pupils(session, workspace_id)
        inserts, updates, report.unchanged = _plan_pupils(rows, existing, workspace_id=workspace_id)
        await _write_pupils(session, inserts, updates, tracker)
        now = utcnow()
        report.context_changed = await _write_contexts(
            session, rows, workspace_id=workspace_id, cipher=cipher, now=now
        )
        report.left, report.rejoined = await _mark_leavers(
            session,
            workspace_id=workspace_id,
            seen=seen,
            keep_missing=keep_missing or not seen,  # an empty file is not "everyone left"
            today=today,
            now=now,
        )
    report.created, report.updated = len(inserts), len(updates)
    tracker.finish()
    return report
