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
from store.models import Pupil, PupilDetails, utcnow
from store.pupils import (
    open_details,
    roster_changed,
    seal_details,
    search_text,
    upn_hash,
    upn_key,
)
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
NAME_MAX = 100  # each of a pupil's names, as before they were encrypted
SEARCH_TEXT_MAX = 400  # all their names and UPN, folded (`store.pupils.search_text`)
# The MIS's optional context columns, as headers match them (`CP_Plan` -> `cp_plan`).
PUPIL_CONTEXT = tuple(pupil_context.CSV_COLUMNS)


@dataclass(frozen=True)
class _PupilRow:
    """A valid pupil row: its line, UPN, who the pupil is, and their groups."""

    line: int
    upn: str
    details: PupilDetails
    groups: tuple[str, str]  # year group, registration group
    context: dict[str, Any]  # the context columns the file has, checked


def _pupil_row(record: Record, *, today: dt.date) -> tuple[str | None, _PupilRow | str]:
    """The row's UPN (if valid) and either the valid row or the reason it is rejected."""
    check = fields.Checker(record.values)
    values: dict[str, Any] = {"upn": fields.upn(check)}
    for column in ("forename", "surname", "preferred_name"):
        values[column] = check.text(column, limit=NAME_MAX, required=column != "preferred_name")
    values["date_of_birth"] = fields.date_of_birth(check, today=today)
    for column in ("year_group", "registration_group"):
        values[column] = check.text(column, limit=fields.max_length(Pupil, column))
    context = fields.context(check)
    upn = values["upn"]
    if check.problems:
        return upn, "; ".join(check.problems)
    names = {k: values[k] for k in ("upn", "forename", "surname", "preferred_name")}
    if len(search_text(**names)) > SEARCH_TEXT_MAX:
        return upn, "the names are too long to index for search"
    details = PupilDetails(date_of_birth=values["date_of_birth"], **names)
    groups = (values["year_group"], values["registration_group"])
    return upn, _PupilRow(record.line, upn, details, groups, context)


@dataclass(frozen=True)
class _Stored:
    id: int
    details: PupilDetails
    groups: tuple[str, str]


async def _existing_pupils(session: AsyncSession, workspace_id: int) -> dict[str, _Stored]:
    """Every pupil of the workspace by UPN hash: id, who they are and groups (one query)."""
    result = await session.execute(
        select(
            Pupil.id, Pupil.upn_hash, Pupil.details_ct, Pupil.year_group, Pupil.registration_group
        ).where(Pupil.workspace_id == workspace_id)
    )
    return {
        upn_hashed: _Stored(pupil_id, open_details(pupil_id, bytes(token)), (year, group))
        for pupil_id, upn_hashed, token, year, group in result.all()
    }


def _plan_pupils(
    rows: list[_PupilRow],
    existing: dict[str, _Stored],
    *,
    key: bytes,
    workspace_id: int,
) -> tuple[list[_PupilRow], list[tuple[int, _PupilRow]], int]:
    """Rows to insert, rows to update (with their id), and how many are unchanged."""
    inserts: list[_PupilRow] = []
    updates: list[tuple[int, _PupilRow]] = []
    unchanged = 0
    for row in rows:
        stored = existing.get(upn_hash(key, row.upn))
        if stored is None:
            inserts.append(row)
        elif stored.details == row.details and stored.groups == row.groups:
            unchanged += 1
        else:
            updates.append((stored.id, row))
    return inserts, updates, unchanged


async def _write_pupils(
    session: AsyncSession,
    inserts: list[_PupilRow],
    updates: list[tuple[int, _PupilRow]],
    progress: Progress,
    *,
    key: bytes,
    cipher: Cipher,
    workspace_id: int,
) -> None:
    """Insert and update pupils in batches (executemany), reporting progress. A new row
    is inserted first (for its id), then sealed: its details are bound to that id."""
    now = utcnow()
    for batch in batches(inserts):
        by_hash = {upn_hash(key, row.upn): row for row in batch}
        added = await session.execute(
            insert(Pupil).returning(Pupil.id, Pupil.upn_hash),
            [
                {
                    "workspace_id": workspace_id,
                    "upn_hash": hashed,
                    "details_ct": b"",
                    "year_group": row.groups[0],
                    "registration_group": row.groups[1],
                    "updated_at": now,
                }
                for hashed, row in by_hash.items()
            ],
        )
        sealed = [
            {"id": pupil_id, "details_ct": seal_details(cipher, pupil_id, by_hash[hashed].details)}
            for pupil_id, hashed in added.all()
        ]
        await session.execute(update(Pupil), sealed)
        progress.advance(len(batch))
    for changed in batches(updates):
        await session.execute(
            update(Pupil),
            [
                {
                    "id": pupil_id,
                    "details_ct": seal_details(cipher, pupil_id, row.details),
                    "year_group": row.groups[0],
                    "registration_group": row.groups[1],
                    "updated_at": now,
                }
                for pupil_id, row in changed
            ],
        )
        progress.advance(len(changed))


async def _mark_leavers(
    session: AsyncSession,
    *,
    workspace_id: int,
    seen: set[str],
    key: bytes,
    keep_missing: bool,
    today: dt.date,
    now: dt.datetime,
) -> tuple[int, int]:
    """Pupils missing from the file marked as left (unless `keep_missing`), and leavers
    found in it again back on the roster, each dated in their history: how many of each.

    A row rejected for a bad field still counts as the pupil being in the file."""
    result = await session.execute(
        select(Pupil.id, Pupil.upn_hash, Pupil.left_on).where(Pupil.workspace_id == workspace_id)
    )
    seen_hashes = {upn_hash(key, upn) for upn in seen}
    leaving: list[int] = []
    back: list[int] = []
    for pupil_id, hashed, left_on in result.all():
        present = hashed in seen_hashes
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
    cipher: Cipher,
    key: bytes,
    now: dt.datetime,
) -> int:
    """Store the context columns the file has, each change dated: how many pupils changed."""
    given = [row for row in rows if row.context]
    if not given:
        return 0
    ids = dict(
        (hashed, pupil_id)
        for pupil_id, hashed in (
            await session.execute(
                select(Pupil.id, Pupil.upn_hash).where(Pupil.workspace_id == workspace_id)
            )
        ).all()
    )
    stored = await pupil_context.stored_contexts(session, workspace_id=workspace_id, cipher=cipher)
    changed = 0
    for row in given:
        pupil_id = ids[upn_hash(key, row.upn)]
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
    file). Names, dates of birth and UPNs are stored encrypted, so `cipher` is needed;
    the workspace's roster is marked changed (`store.pupils.roster_changed`)."""
    if cipher is None:
        raise RosterFileError(
            "importing pupils needs VIGIL_DATA_KEY: their names and dates of birth are "
            "stored encrypted"
        )
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
        await keyring.ensure_data_key(session, cipher)
        key = await upn_key(session, workspace_id=workspace_id, cipher=cipher)
        existing = await _existing_pupils(session, workspace_id)
        inserts, updates, report.unchanged = _plan_pupils(
            rows, existing, key=key, workspace_id=workspace_id
        )
        await _write_pupils(
            session,
            inserts,
            updates,
            tracker,
            key=key,
            cipher=cipher,
            workspace_id=workspace_id,
        )
        now = utcnow()
        report.context_changed = await _write_contexts(
            session, rows, workspace_id=workspace_id, cipher=cipher, key=key, now=now
        )
        report.left, report.rejoined = await _mark_leavers(
            session,
            workspace_id=workspace_id,
            seen=seen,
            key=key,
            keep_missing=keep_missing or not seen,  # an empty file is not "everyone left"
            today=today,
            now=now,
        )
        await roster_changed(session, workspace_id=workspace_id)
    report.created, report.updated = len(inserts), len(updates)
    tracker.finish()
    return report
