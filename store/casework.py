"""Casework (DESIGN §12): a concern's status, and the lists a safeguarding team runs.

A concern is `open`, `monitoring` or `closed`. Incidents never change, so a status is a
row of `case_status_changes`, written with the action that records it (the action's
encrypted text is the reason); the concern's status is its latest change, `open` when
it has none. The latest is also kept in `case_statuses` (one row per concern changed),
so that lists filter by status with a join rather than a search of each concern's
history. Closing names an outcome: the standard ones or the school's own
(`SchoolConfig.outcomes`).

The lists (the caseload, a search, "my concerns") are built on a query of the incidents
the viewer may see, `store.access.visible_incidents`, narrowed by `CaseFilters`, and read
a page at a time (`case_rows`). Who may ask for which list is the flows' business
(`store.flows.casework`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring, pupils, referrals, textsearch
from store.actions import ACTION_MAX, current_categories_for
from store.crypto import Cipher
from store.enums import CaseStatus, ReferralStatus
from store.errors import FieldErrors
from store.models import (
    CaseStatusChange,
    CurrentCaseStatus,
    Incident,
    IncidentAction,
    IncidentAgency,
    IncidentCategory,
    IncidentPupil,
    Pupil,
    Referral,
    Staff,
)
from store.staff import staff_names

STATUSES = tuple(CaseStatus)
STATUS_LABELS = {
    CaseStatus.OPEN: "Open",
    CaseStatus.MONITORING: "Monitoring",
    CaseStatus.CLOSED: "Closed",
}
# What each change does, by the status it sets, for the action list and the audit log.
CHANGE_LABELS = {
    CaseStatus.OPEN: "Reopened",
    CaseStatus.MONITORING: "Set to monitoring",
    CaseStatus.CLOSED: "Closed",
}
AUDIT_ACTIONS = {
    CaseStatus.OPEN: "case.reopen",
    CaseStatus.MONITORING: "case.monitor",
    CaseStatus.CLOSED: "case.close",
}
TEXT_MAX = 200  # a search box's text


class InvalidStatusChange(FieldErrors):
    """The status change cannot be made; `errors` maps each form field to a message."""


# -- a concern's status -------------------------------------------------------------------


def status_of() -> ColumnElement[str]:
    """The incident's status in a query joined by `with_status`: `open` with no change."""
    return func.coalesce(CurrentCaseStatus.status, literal(CaseStatus.OPEN.value))


def with_status(query: Select[Incident]) -> Select[Incident]:
    """`query` (of incidents) joined to each incident's status now (its latest change,
    kept in `case_statuses`), if it has one."""
    return query.outerjoin(CurrentCaseStatus, CurrentCaseStatus.incident_id == Incident.id)


def not_closed(
    query: Select[Incident], *, workspace_id: int, only: Sequence[str] = ()
) -> Select[Incident]:
    """`query` (of incidents) narrowed to the concerns not closed (the caseload's; `only`
    those statuses among them, if not every one), joined to their status: with
    `CASELOAD_ORDER`, a range of `ix_case_statuses_caseload` (its condition is written as
    SQL text so that PostgreSQL matches it to the partial index), so a page is read
    without walking the closed concerns before it nor sorting the open ones."""
    query = query.join(CurrentCaseStatus, CurrentCaseStatus.incident_id == Incident.id).where(
        CurrentCaseStatus.workspace_id == workspace_id,
        CurrentCaseStatus.status != literal_column(f"'{CaseStatus.CLOSED.value}'"),
    )
    wanted = [s for s in only if s != CaseStatus.CLOSED]
    if wanted and set(wanted) != {CaseStatus.OPEN, CaseStatus.MONITORING}:
        query = query.where(CurrentCaseStatus.status.in_(wanted))
    return query


# Oldest first, as `ix_case_statuses_caseload` holds them (the concern's created_at, id).
CASELOAD_ORDER = (CurrentCaseStatus.created_at, CurrentCaseStatus.incident_id)


@dataclass(frozen=True)
class CaseState:
    """Where a concern stands: its status, the outcome it was closed with, since when."""

    status: str
    outcome: str | None = None
    since: dt.datetime | None = None
    by: str | None = None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(CaseStatus(self.status), self.status)


async def current_state(
    session: AsyncSession, *, incident_id: int, lock: bool = False
) -> CaseState:
    """The incident's status now: its latest change, or open. With `lock` (about to
    change it), concurrent changes to the same concern wait for this transaction."""
    if lock:
        await session.execute(
            select(CurrentCaseStatus.incident_id)
            .where(CurrentCaseStatus.incident_id == incident_id)
            .with_for_update()
        )
    latest = await session.scalar(
        select(CaseStatusChange)
        .where(CaseStatusChange.incident_id == incident_id)
        .order_by(CaseStatusChange.id.desc())
        .limit(1)
    )
    return await state_of(session, latest=latest)


async def state_of(session: AsyncSession, *, latest: CaseStatusChange | None) -> CaseState:
    """`current_state`, given the incident's latest change (None: it was never changed)."""
    if latest is None:
        return CaseState(CaseStatus.OPEN)
    names = await staff_names(session, ids={latest.author_id})
    outcome = latest.outcome if latest.status == CaseStatus.CLOSED else None
    return CaseState(latest.status, outcome, latest.created_at, names.get(latest.author_id))


async def changes_by_action(
    session: AsyncSession, *, incident_id: int
) -> dict[int, CaseStatusChange]:
    """The incident's status changes, by the action that recorded each."""
    rows = await session.scalars(
        select(CaseStatusChange).where(CaseStatusChange.incident_id == incident_id)
    )
    return {row.action_id: row for row in rows}


@dataclass(frozen=True)
class StatusWanted:
    """A status change as asked for: the status, an outcome (closing), and why."""

    status: str
    outcome: str
    reason: str


@dataclass(frozen=True)
class StatusPlan:
    """A status change that passed every check: ready to write."""

    status: CaseStatus
    outcome: str | None
    reason: str


def check_change(wanted: StatusWanted, *, current: str, outcomes: Sequence[str]) -> StatusPlan:
    """Every check of a status change, writing nothing; InvalidStatusChange names each field.

    Close (from open or monitoring) with an outcome; set monitoring (from open or
    closed); reopen (from monitoring or closed). Each needs a reason.
    """
    errors: dict[str, str] = {}
    status = next((s for s in CaseStatus if s.value == wanted.status), None)
    reason = wanted.reason.strip()
    outcome = None
    if status is None:
        errors["status"] = "Choose open, monitoring or closed."
    elif status == current:
        errors["status"] = f"The concern is already {status.value}."
    if status == CaseStatus.CLOSED:
        outcome = next(
            (o for o in outcomes if o.casefold() == wanted.outcome.strip().casefold()), None
        )
        if outcome is None:
            errors["outcome"] = "Choose the outcome the concern is closed with."
    if not reason:
        errors["reason"] = "Say why."
    elif len(reason) > ACTION_MAX:
        errors["reason"] = f"Keep the reason under {ACTION_MAX} characters."
    if errors or status is None:
        raise InvalidStatusChange(errors)
    return StatusPlan(status, outcome, reason)


async def write_change(
    session: AsyncSession,
    plan: StatusPlan,
    *,
    author: Staff,
    incident: Incident,
    cipher: Cipher,
    now: dt.datetime,
) -> tuple[IncidentAction, CaseStatusChange]:
    """Write a checked status change: its action (the reason, encrypted), its row, and the
    concern's status now (`case_statuses`; a concern's first change inserts it, so two at
    once cannot both be first)."""
    action = IncidentAction(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        author_id=author.id,
        created_at=now,
        categories=None,
    )
    await keyring.seal(session, cipher, action, {IncidentAction.text_ct: plan.reason})
    await textsearch.add_text(
        session,
        incident_id=incident.id,
        workspace_id=incident.workspace_id,
        text=plan.reason,
        cipher=cipher,
    )
    change = CaseStatusChange(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        action_id=action.id,
        status=plan.status.value,
        outcome=plan.outcome,
        author_id=author.id,
        created_at=now,
    )
    session.add(change)
    await session.flush()
    current = await session.get(CurrentCaseStatus, incident.id)
    if current is None:
        current = CurrentCaseStatus(
            incident_id=incident.id,
            workspace_id=incident.workspace_id,
            created_at=incident.created_at,
        )
        session.add(current)
    current.change_id = change.id
    current.status = change.status
    current.outcome = change.outcome
    current.changed_at = now
    await session.flush()
    return action, change


# -- lists of concerns --------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilters:
    """What a list of concerns is narrowed by; each left empty (None) narrows nothing."""

    statuses: tuple[str, ...] = ()
    category: str | None = None
    author_id: int | None = None
    year_group: str | None = None
    registration_group: str | None = None
    open_referral: bool | None = None
    pupil: str | None = None  # words of a name or a UPN, as the pupil finder takes them
    outcome: str | None = None
    happened_from: dt.datetime | None = None  # [from, to), UTC instants
    happened_to: dt.datetime | None = None
    agency: str | None = None
    reference: str | None = None
    text: str | None = None  # words of the narrative or actions, all required (see flows)
    # What `resolved` finds for `pupil` and `reference` (names and references are stored
    # encrypted: the roster in memory matches the pupil, a keyed hash the reference).
    pupil_ids: tuple[int, ...] | None = None
    reference_hash: str | None = None

    @property
    def kinds(self) -> list[str]:
        """Which filters are set, by name only (what an audit entry may say)."""
        return [
            name
            for name, value in (
                ("status", self.statuses),
                ("category", self.category),
                ("author", self.author_id),
                ("year", self.year_group),
                ("class", self.registration_group),
                ("open-referral", self.open_referral),
                ("pupil", self.pupil),
                ("outcome", self.outcome),
                ("from", self.happened_from),
                ("to", self.happened_to),
                ("agency", self.agency),
                ("reference", self.reference),
                ("text", self.text),
            )
            if value not in (None, (), "")
        ]


def _like_inside(text: str) -> str:
    """A LIKE pattern for `text` anywhere (% and _ escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _main_pupil(*conditions: ColumnElement[bool], probe: bool = False) -> ColumnElement[bool]:
    """The incident's main pupil meets every condition."""
    found = (
        select(IncidentPupil.incident_id)
        .join(Pupil, Pupil.id == IncidentPupil.pupil_id)
        .where(IncidentPupil.is_main, *conditions)
    )
    if probe:
        return exists(found.where(IncidentPupil.incident_id == Incident.id))
    return Incident.id.in_(found)


def _open_referral() -> ColumnElement[bool]:
    return exists(
        select(Referral.id).where(
            Referral.incident_id == Incident.id, Referral.status != ReferralStatus.CLOSED
        )
    )


def _in_category(name: str, *, workspace_id: int, probe: bool) -> ColumnElement[bool]:
    """Filed in the category, or re-categorised to it (the list is stored as JSON text)."""
    filed = select(IncidentCategory.incident_id).where(IncidentCategory.name == name)
    moved = select(IncidentAction.incident_id).where(
        IncidentAction.workspace_id == workspace_id,
        IncidentAction.categories.is_not(None),
        cast(IncidentAction.categories, String).like(_like_inside(json.dumps(name)), escape="\\"),
    )
    if probe:
        return or_(
            exists(filed.where(IncidentCategory.incident_id == Incident.id)),
            exists(moved.where(IncidentAction.incident_id == Incident.id)),
        )
    return or_(Incident.id.in_(filed), Incident.id.in_(moved))


# Filters on what was filed with an incident (its pupils, categories, agencies) or
# recorded later (referrals) are `Incident.id IN (…)`: the database can start from the
# few incidents that match instead of testing each incident in turn. With `probe` (the
# caseload: at most the concerns not closed, read in order) the category and pupil
# filters are EXISTS instead: a primary-key probe for each concern read, rather than
# first collecting every concern of the category or year group the school ever had.


async def resolved(
    session: AsyncSession, filters: CaseFilters, *, workspace_id: int, cipher: Cipher
) -> CaseFilters:
    """`filters` with the pupils its `pupil` words match (from the roster in memory) and
    its `reference`'s keyed hash: what `narrowed` filters by."""
    pupil_ids = None
    if filters.pupil:
        pupil_ids = tuple(
            await pupils.matching_ids(session, workspace_id=workspace_id, query=filters.pupil)
        )
    reference_hash = None
    if filters.reference:
        key = await textsearch.search_key(session, workspace_id=workspace_id, cipher=cipher)
        reference_hash = textsearch.exact_hash(
            key, "reference", referrals.normal_reference(filters.reference)
        )
    return dataclasses.replace(filters, pupil_ids=pupil_ids, reference_hash=reference_hash)


def narrowed(
    query: Select[Incident],
    filters: CaseFilters,
    *,
    workspace_id: int,
    probe: bool = False,
) -> Select[Incident]:
    """`query` (of incidents, joined `with_status`) narrowed by every filter set but the
    text (`store.textsearch.holding_every`)."""
    f = filters
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(status_of().in_(list(f.statuses)))
    if f.category:
        conditions.append(_in_category(f.category, workspace_id=workspace_id, probe=probe))
    if f.author_id is not None:
        conditions.append(Incident.author_id == f.author_id)
    if f.year_group:
        conditions.append(
            _main_pupil(
                Pupil.workspace_id == workspace_id, Pupil.year_group == f.year_group, probe=probe
            )
        )
    if f.registration_group:
        conditions.append(
            _main_pupil(
                Pupil.workspace_id == workspace_id,
                Pupil.registration_group == f.registration_group,
                probe=probe,
            )
        )
    if f.open_referral is not None:
        conditions.append(_open_referral() if f.open_referral else ~_open_referral())
    if f.pupil and pupils.query_words(f.pupil):
        conditions.append(
            Incident.id.in_(
                select(IncidentPupil.incident_id).where(
                    IncidentPupil.pupil_id.in_(list(f.pupil_ids or ()))
                )
            )
        )
    if f.outcome:
        conditions.append(
            and_(
                CurrentCaseStatus.status == CaseStatus.CLOSED,
                # The plain equality (the outcome as offered) lets the planner estimate
                # how many match from the column's statistics; on lower() alone it guesses
                # 0.5% and collects every match of a common outcome before sorting.
                or_(
                    CurrentCaseStatus.outcome == f.outcome,
                    func.lower(CurrentCaseStatus.outcome) == f.outcome.lower(),
                ),
            )
        )
    if f.happened_from is not None:
        conditions.append(Incident.happened_at >= f.happened_from)
    if f.happened_to is not None:
        conditions.append(Incident.happened_at < f.happened_to)
    if f.agency:
        agency = f.agency.lower()
        # One IN of both lists (not an OR of two INs, which PostgreSQL can only test
        # concern by concern): the database starts from the few concerns that match.
        conditions.append(
            Incident.id.in_(
                union_all(
                    select(IncidentAgency.incident_id).where(
                        func.lower(IncidentAgency.name) == agency
                    ),
                    select(Referral.incident_id).where(
                        Referral.workspace_id == workspace_id, func.lower(Referral.agency) == agency
                    ),
                )
            )
        )
    if f.reference:
        conditions.append(
            Incident.id.in_(
                select(Referral.incident_id).where(
                    Referral.workspace_id == workspace_id,
                    Referral.reference_hash == (f.reference_hash or ""),
                )
            )
        )
    return query.where(*conditions)


@dataclass(frozen=True)
class CaseRow:
    """A concern as a list shows it."""

    number: int
    happened_at: dt.datetime
    created_at: dt.datetime
    author: str
    pupil: str  # the main pupil's name ("" if none)
    year_group: str
    registration_group: str
    categories: list[str]
    status: str
    outcome: str | None
    open_referrals: int

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(CaseStatus(self.status), self.status)


@dataclass(frozen=True)
class CasePage:
    """One page of a list: its rows, which page, and whether another follows."""

    rows: list[CaseRow]
    page: int
    more: bool


async def case_rows(
    session: AsyncSession,
    query: Select[Incident],
    *,
    oldest_first: bool,
    page: int,
    per_page: int,
    order: Sequence[Any] | None = None,
) -> CasePage:
    """One page of `query` (joined `with_status` or `not_closed`), by the time each concern
    was recorded (or by `order`: the same order, as an index holds it)."""
    if order is None:
        order = (
            (Incident.created_at, Incident.id)
            if oldest_first
            else (Incident.created_at.desc(), Incident.id.desc())
        )
    statement = (
        query.add_columns(status_of(), CurrentCaseStatus.outcome)
        .order_by(*order)
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    found = (await session.execute(statement)).all()
    more = len(found) > per_page
    found = found[:per_page]
    ids = [row[0].id for row in found]
    categories = await current_categories_for(session, incident_ids=ids)
    referrals: dict[int, int] = {}
    if ids:
        counted = await session.execute(
            select(Referral.incident_id, func.count())
            .where(Referral.incident_id.in_(ids), Referral.status != ReferralStatus.CLOSED)
            .group_by(Referral.incident_id)
        )
        referrals = {incident_id: int(count) for incident_id, count in counted}
    rows = []
    for incident, status, outcome in found:
        main = next((p.pupil for p in incident.pupils if p.is_main), None)
        rows.append(
            CaseRow(
                number=incident.number,
                happened_at=incident.happened_at,
                created_at=incident.created_at,
                author=incident.author.name,
                pupil=main.display_name if main else "",
                year_group=main.year_group if main else "",
                registration_group=main.registration_group if main else "",
                categories=categories.get(incident.id, []),
                status=status,
                outcome=outcome if status == CaseStatus.CLOSED else None,
                open_referrals=referrals.get(incident.id, 0),
            )
        )
    return CasePage(rows, page, more)


async def pupil_groups(session: AsyncSession, *, workspace_id: int) -> tuple[list[str], list[str]]:
    """The school's year groups and registration groups (to filter by), each sorted."""
    years = await session.scalars(
        select(Pupil.year_group).where(Pupil.workspace_id == workspace_id).distinct()
    )
    classes = await session.scalars(
        select(Pupil.registration_group).where(Pupil.workspace_id == workspace_id).distinct()
    )
    return sorted(y for y in years if y), sorted(c for c in classes if c)
