"""Casework in the web view (DESIGN §12): changing a concern's status, the key-holders'
caseload and search, and the concerns a member of staff filed.

Every list starts from `store.access.visible_incidents` (the one access rule), so a
concern someone may not see is never listed for them. Each is audited: the filters'
kinds and the page, never what was typed (a search may name a pupil).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from store import access, audit, casework, textsearch
from store.casework import CaseFilters, CasePage, InvalidStatusChange, StatusWanted
from store.enums import CaseStatus
from store.flows import Visit
from store.flows.incidents import IncidentPage, refused_page, visible_or_refused
from store.models import Incident, Staff
from store.staff import staff_in_workspace

PER_PAGE = 50
CASELOAD_STATUSES = (CaseStatus.OPEN.value, CaseStatus.MONITORING.value)


@dataclass(frozen=True)
class StatusChanged:
    number: int
    action_id: int
    status: str


@dataclass(frozen=True)
class StatusRefused:
    """Nothing was changed: every error by form field, and the page to show them on."""

    errors: dict[str, str]
    page: IncidentPage


async def change_status(
    session: AsyncSession, *, visit: Visit, number: int | None, wanted: StatusWanted
) -> StatusChanged | StatusRefused | None:
    """Close (with an outcome), set monitoring or reopen a concern, as an action, audited.

    Key-holders only, and only a concern they may see: None (refusal audited) otherwise.
    """
    if not access.is_keyholder(visit.staff.role_set):
        detail = f"#{number}" if number is not None else "not an incident number"
        visit.trail(session).add("case.status", audit.REFUSED, detail=detail)
        return None
    incident = await visible_or_refused(session, visit=visit, number=number, action="case.status")
    if incident is None:
        return None
    trail = visit.trail(session, incident_id=incident.id, timed=True)
    current = await casework.current_state(session, incident_id=incident.id, lock=True)
    try:
        plan = casework.check_change(
            wanted, current=current.status, outcomes=visit.setup.school.outcomes
        )
    except InvalidStatusChange as invalid:
        page = await refused_page(
            session,
            visit=visit,
            incident=incident,
            trail=trail,
            action=_audit_action(wanted.status),
            errors=invalid.errors,
        )
        return StatusRefused(invalid.errors, page)
    action, change = await casework.write_change(
        session,
        plan,
        author=visit.staff,
        incident=incident,
        cipher=visit.setup.cipher,
        now=visit.now,
    )
    detail = f"action {action.id}; from {current.status}"
    if change.outcome:
        detail += f"; outcome {change.outcome}"
    trail.add(casework.AUDIT_ACTIONS[plan.status], detail=detail)
    return StatusChanged(incident.number, action.id, change.status)


def _audit_action(status: str) -> str:
    """The audit action of a change to `status` (`case.status` if it is not a status)."""
    known = {s.value: s for s in CaseStatus}
    return casework.AUDIT_ACTIONS[known[status]] if status in known else "case.status"


def _listed(viewer: Staff, filters: CaseFilters) -> Select[Incident]:
    return casework.narrowed(
        casework.with_status(access.visible_incidents(viewer)),
        filters,
        workspace_id=viewer.workspace_id,
    )


async def _resolved(session: AsyncSession, visit: Visit, filters: CaseFilters) -> CaseFilters:
    return await casework.resolved(
        session, filters, workspace_id=visit.staff.workspace_id, cipher=visit.setup.cipher
    )


def _detail(filters: CaseFilters, page: int) -> str:
    kinds = filters.kinds
    return ("filters: " + ", ".join(kinds) if kinds else "no filters") + f"; page {page}"


@dataclass(frozen=True)
class CaseloadPage:
    """The caseload, and what it can be filtered by."""

    cases: CasePage
    staff: list[Staff]
    year_groups: list[str]
    classes: list[str]


async def _choices(
    session: AsyncSession, *, workspace_id: int
) -> tuple[list[Staff], list[str], list[str]]:
    staff = await staff_in_workspace(session, workspace_id=workspace_id, active_only=False)
    years, classes = await casework.pupil_groups(session, workspace_id=workspace_id)
    return staff, years, classes


async def view_caseload(
    session: AsyncSession, *, visit: Visit, filters: CaseFilters, page: int
) -> CaseloadPage:
    """Open and monitoring concerns the key-holder may see, oldest first, audited."""
    wanted = tuple(s for s in filters.statuses if s in CASELOAD_STATUSES) or CASELOAD_STATUSES
    # Not closed is the partial index's own condition; one status of the two narrows it
    # further (the column itself, so the planner's estimate stays true).
    query = casework.not_closed(
        access.visible_incidents(visit.staff), workspace_id=visit.staff.workspace_id, only=wanted
    )
    filters = await _resolved(session, visit, filters)
    query = casework.narrowed(
        query,
        dataclasses.replace(filters, statuses=(), text=None),
        workspace_id=visit.staff.workspace_id,
        probe=True,
    )
    cases = await casework.case_rows(
        session,
        query,
        oldest_first=True,
        page=page,
        per_page=PER_PAGE,
        order=casework.CASELOAD_ORDER,
    )
    staff, years, classes = await _choices(session, workspace_id=visit.staff.workspace_id)
    await visit.trail(session).write("caseload.view", detail=_detail(filters, page))
    return CaseloadPage(cases, staff, years, classes)


async def search(
    session: AsyncSession, *, visit: Visit, filters: CaseFilters, page: int
) -> CaseloadPage:
    """Concerns the key-holder may see that match every filter, newest first, audited
    (which filters were used, never their values: a text search is "text", never its
    words). Text is searched by its words' tokens (`store.textsearch`); text with no
    searchable word (only common words) narrows nothing."""
    query = _listed(visit.staff, await _resolved(session, visit, filters))
    order = None
    if filters.text:
        key = await textsearch.search_key(
            session, workspace_id=visit.staff.workspace_id, cipher=visit.setup.cipher
        )
        if tokens := textsearch.query_tokens(key, filters.text):
            query, order = await textsearch.holding_every(session, query, tokens)
    cases = await casework.case_rows(
        session, query, oldest_first=False, page=page, per_page=PER_PAGE, order=order
    )
    staff, years, classes = await _choices(session, workspace_id=visit.staff.workspace_id)
    visit.trail(session).add("search", detail=_detail(filters, page))
    return CaseloadPage(cases, staff, years, classes)


async def my_concerns(session: AsyncSession, *, visit: Visit, page: int) -> CasePage:
    """The concerns the visitor filed (those they may still see), newest first, audited."""
    viewer = visit.staff
    query = casework.with_status(access.visible_incidents(viewer)).where(
        Incident.author_id == viewer.id
    )
    cases = await casework.case_rows(
        session, query, oldest_first=False, page=page, per_page=PER_PAGE
    )
    await visit.trail(session).write("my_concerns.view", detail=f"page {page}")
    return cases
