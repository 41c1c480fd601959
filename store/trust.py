"""The trust's figures: counts per school across every school of the deployment (one
deployment is one trust), for its trust leads (`store.access.may_see_trust`).

Counts only, per school and category (each concern under its categories now, after any
re-categorisation): never a narrative, a pupil, a member of staff or an incident number.
Allegations about an adult are left out of every count (the adult may work anywhere in
the trust, a trust lead included). Each school's term and "today" are its own (its
working time's time zone, `store.schools`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.access import is_allegation
from store.enums import CaseStatus, ReferralStatus
from store.models import (
    CurrentCaseStatus,
    Incident,
    IncidentAction,
    IncidentCategory,
    Referral,
    Task,
    UrgentConcern,
    Workspace,
)
from store.reports.periods import DateRange, term_of
from store.reports.sql import recategorised
from store.school_config import SchoolConfig


@dataclass(frozen=True)
class SchoolFigures:
    """One school's counts."""

    name: str
    term: DateRange
    by_category: dict[str, int] = field(default_factory=dict)  # this term's, categories now
    by_status: dict[str, int] = field(default_factory=dict)  # those concerns, status now
    overdue_referrals: int = 0  # awaiting a response (or a consultation) past due
    overdue_tasks: int = 0  # not done, due before the school's today
    unopened_urgent: int = 0  # urgent concerns nobody on the safeguarding team opened

    @property
    def concerns(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class TrustFigures:
    schools: list[SchoolFigures]
    categories: list[str]  # every category counted anywhere, in name order


async def trust_figures(
    session: AsyncSession, *, now: dt.datetime, config_of: Callable[[int], SchoolConfig]
) -> TrustFigures:
    """Every school's counts (`config_of(workspace_id)`: its configuration)."""
    schools = (
        await session.execute(select(Workspace.id, Workspace.name).order_by(Workspace.name))
    ).all()
    found: list[SchoolFigures] = []
    for workspace_id, name in schools:
        found.append(await _school(session, workspace_id, name, now, config_of(workspace_id)))
    categories = sorted({c for s in found for c in s.by_category})
    return TrustFigures(found, categories)


async def _school(
    session: AsyncSession, workspace_id: int, name: str, now: dt.datetime, config: SchoolConfig
) -> SchoolFigures:
    zone = config.working_time.zone
    today = now.astimezone(zone).date()
    term = term_of(today)
    start, end = term.bounds(zone)
    this_term = (
        Incident.workspace_id == workspace_id,
        Incident.created_at >= start,
        Incident.created_at < end,
        ~is_allegation(Incident.id),
    )
    by_category = await _by_category_now(session, this_term)
    statuses = dict(
        (
            await session.execute(
                select(CurrentCaseStatus.status, func.count())
                .join(Incident, Incident.id == CurrentCaseStatus.incident_id)
                .where(*this_term)
                .group_by(CurrentCaseStatus.status)
            )
        ).all()
    )
    by_status = {status.value: statuses.get(status.value, 0) for status in CaseStatus}
    overdue_referrals = await session.scalar(
        select(func.count())
        .select_from(Referral)
        .where(
            Referral.workspace_id == workspace_id,
            Referral.status.in_([ReferralStatus.AWAITING.value, ReferralStatus.CONSULT.value]),
            Referral.due_at <= now,
            ~is_allegation(Referral.incident_id),
        )
    )
    overdue_tasks = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.workspace_id == workspace_id,
            Task.done_at.is_(None),
            Task.due_on < today,
            ~is_allegation(Task.incident_id),
        )
    )
    unopened_urgent = await session.scalar(
        select(func.count())
        .select_from(UrgentConcern)
        .where(
            UrgentConcern.workspace_id == workspace_id,
            UrgentConcern.opened_at.is_(None),
            ~is_allegation(UrgentConcern.incident_id),
        )
    )
    return SchoolFigures(
        name=name,
        term=term,
        by_category={str(k): int(v) for k, v in by_category.items()},
        by_status=by_status,
        overdue_referrals=int(overdue_referrals or 0),
        overdue_tasks=int(overdue_tasks or 0),
        unopened_urgent=int(unopened_urgent or 0),
    )


async def _by_category_now(
    session: AsyncSession, these: tuple[ColumnElement[bool], ...]
) -> Counter[str]:
    """The concerns `these` picks, counted under their categories now: the latest
    re-categorisation, else as filed (like `store.actions.current_categories_for`), in two
    set-based queries as the reports do (`store.reports.incident_counts`)."""
    changed = (
        select(IncidentAction.id)
        .where(IncidentAction.incident_id == Incident.id, recategorised())
        .exists()
    )
    counts: Counter[str] = Counter()
    for category, count in await session.execute(
        select(IncidentCategory.name, func.count())
        .join(Incident, Incident.id == IncidentCategory.incident_id)
        .where(*these, not_(changed))
        .group_by(IncidentCategory.name)
    ):
        counts[str(category)] += int(count)
    latest: dict[int, list[str]] = {}  # rows come oldest action first
    for incident_id, categories in await session.execute(
        select(Incident.id, IncidentAction.categories)
        .join(IncidentAction, IncidentAction.incident_id == Incident.id)
        .where(*these, recategorised())
        .order_by(Incident.id, IncidentAction.id)
    ):
        if categories:
            latest[incident_id] = list(categories)
    counts.update(name for names in latest.values() for name in dict.fromkeys(names))
    return counts
