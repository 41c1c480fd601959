"""The staff roster import: keyed by (workspace, lower-cased email), with roles, classes
and Slack user ids (from the file, else looked up by email, else kept as stored)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from store import workspaces
from store.db import SessionFactory, transaction
from store.models import Staff, StaffClass
from store.roster import fields
from store.roster.csvfile import Record, Table, read_table
from store.roster.progress import Progress, ProgressCallback
from store.roster.report import ImportReport, RosterFileError, RowProblem, by_line
from store.staff import count_unlinked_staff, staff_by_email

SlackLookup = Callable[[str], Awaitable[str | None]]

STAFF_REQUIRED = ("email", "name", "roles", "classes")
STAFF_OPTIONAL = ("slack_user_id",)

LOOKUP_CONCURRENCY = 4  # Slack lookups in flight at once

NO_SLACK_ACCOUNT = "no Slack account with this email; they will not receive alerts"


@dataclass(frozen=True)
class _StaffRow:
    """A valid staff row (slack_user_id as given in the file)."""

    line: int
    email: str
    name: str
    roles: str
    classes: frozenset[str]
    slack_user_id: str | None


def _staff_row(record: Record) -> tuple[str | None, _StaffRow | str]:
    """The row's email (if valid) and either the valid row or the reason it is rejected."""
    check = fields.Checker(record.values)
    email = fields.email(check)
    name = check.text("name", limit=fields.max_length(Staff, "name"))
    roles = fields.roles(check)
    classes = fields.classes(check)
    slack_user_id = fields.slack_user_id(check)
    if check.problems:
        return email, "; ".join(check.problems)
    # Each check that gives None has recorded a problem.
    assert email is not None and name is not None and roles is not None and classes is not None
    return email, _StaffRow(record.line, email, name, roles, classes, slack_user_id)


async def _lookup_all(
    rows: list[_StaffRow], lookup: SlackLookup, progress: Progress
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


def _present_emails(table: Table) -> set[str]:
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
    table = read_table(path, required=STAFF_REQUIRED, optional=STAFF_OPTIONAL)
    if deactivate_missing and len(table.records) == 0:
        raise RosterFileError("the file has no staff rows; refusing to deactivate everyone")
    rows, errors = fields.keep_valid(table, _staff_row, label="email")
    report = ImportReport(kind="staff", errors=errors, encoding=table.encoding)
    tracker = Progress(progress, len(table.records))
    to_find = [row for row in rows if not row.slack_user_id] if lookup_slack_id else []
    tracker.advance(len(table.records) - len(to_find))
    found = await _lookup_all(to_find, lookup_slack_id, tracker) if lookup_slack_id else None
    present = _present_emails(table)
    async with transaction(session_factory) as session:
        await workspaces.check_exists(session, workspace_id=workspace_id)
        existing = await staff_by_email(session, workspace_id=workspace_id)
        plan = _plan_staff(
            rows, existing, found=found, present=present, deactivate_missing=deactivate_missing
        )
        await _apply_staff(session, plan, existing, workspace_id=workspace_id, report=report)
        if deactivate_missing:
            report.deactivated = _deactivate(existing, present)
        await session.flush()
        report.unlinked = await count_unlinked_staff(session, workspace_id=workspace_id)
    report.slack_asked = lookup_slack_id is not None
    report.errors = sorted([*report.errors, *plan.errors], key=by_line)
    report.warnings = sorted(plan.warnings, key=by_line)
    tracker.finish()
    return report
