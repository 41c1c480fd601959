"""Agency referrals (DESIGN §6): recording them, responses, snoozes, and overdue nudges.

A referral is recorded by an action, with a due time computed in working time from the
agency's timescale (`store.school_config`, `store.workdays`). While it waits for the
agency, the overdue check nudges the safeguarding team at most once per working day,
and escalates to the head after a configured number of overdue working days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import BindParameter, ColumnElement, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring, messages, outbox, textsearch
from store.access import (
    in_view,
    is_allegation,
    may_change_case,
    may_change_referrals,
    visible_incident_ids,
)
from store.crypto import Cipher
from store.enums import ReferralEventKind, ReferralStatus
from store.errors import FieldErrors
from store.messages import Message
from store.models import (
    Incident,
    IncidentAction,
    Nudge,
    Referral,
    ReferralEvent,
    Staff,
    utcnow,
)
from store.nudges import NudgeDay, Nudger, nudge_due
from store.school_config import Agency, SchoolConfig
from store.staff import nudge_recipients
from store.workdays import WorkingTime

log = structlog.get_logger(__name__)

AWAITING, RESPONDED, CLOSED, CONSULT = (
    ReferralStatus.AWAITING,
    ReferralStatus.RESPONDED,
    ReferralStatus.CLOSED,
    ReferralStatus.CONSULT,
)
NUDGE_BATCH = 200
# Inlined, not a bound parameter: a generic plan could then still use the partial index
# `ix_referrals_awaiting_due` (WHERE status = 'awaiting').
_AWAITING_LITERAL: BindParameter[str] = bindparam("awaiting", AWAITING.value, literal_execute=True)


class InvalidReferral(FieldErrors):
    """The referral change cannot be made; `errors` maps each field to a message."""


def _event(
    session: AsyncSession,
    referral: Referral,
    kind: ReferralEventKind,
    *,
    now: dt.datetime,
    actor: Staff | None = None,
    action: IncidentAction | None = None,
    detail: str | None = None,
) -> None:
    session.add(
        ReferralEvent(
            referral_id=referral.id,
            kind=kind,
            at=now,
            actor_id=actor.id if actor else None,
            action_id=action.id if action else None,
            detail=detail,
        )
    )


def check_referred_at(referred_at: dt.datetime, *, now: dt.datetime) -> None:
    """InvalidReferral if a new referral's time is in the future."""
    if referred_at > now + dt.timedelta(minutes=5):
        raise InvalidReferral({"referred_at": "The referral cannot be in the future."})


def check_outcome(
    referral: Referral, *, outcome: ReferralEventKind, at: dt.datetime, now: dt.datetime
) -> None:
    """InvalidReferral if this response (at `at`) or closing cannot be recorded."""
    if referral.status == CLOSED:
        raise InvalidReferral({"referral": "That referral is already closed."})
    consultation = (ReferralEventKind.CONSULTED, ReferralEventKind.NOT_NEEDED)
    if (referral.status == CONSULT) != (outcome in consultation):
        problem = (
            "Record that the consultation was held, or that no referral is needed (say why "
            "in the action)."
            if referral.status == CONSULT
            else "Choose a response or closing the referral."
        )
        raise InvalidReferral({"referral": problem})
    if outcome in consultation:
        return
    if at > now + dt.timedelta(minutes=5):
        raise InvalidReferral({"responded_at": "That time is in the future."})
    if outcome == ReferralEventKind.RESPONSE and referral.status == RESPONDED:
        raise InvalidReferral({"referral": "That referral already has a response recorded."})
    if outcome == ReferralEventKind.RESPONSE and at < referral.referred_at:
        raise InvalidReferral({"responded_at": "The response cannot be before the referral."})
    if outcome not in (ReferralEventKind.RESPONSE, ReferralEventKind.CLOSED):
        raise InvalidReferral({"referral": "Choose a response or closing the referral."})


async def _only_the_safeguarding_team(
    session: AsyncSession, *, author: Staff, incident_id: int
) -> None:
    """Refuse a change to a referral by anyone but a key-holder or an allegation's manager
    (the flows ask first)."""
    if not await may_change_case(session, staff=author, incident_id=incident_id):
        raise InvalidReferral({"referral": "Only the safeguarding team can change a referral."})


def normal_reference(reference: str) -> str:
    """An agency's reference as compared: case and spaces ignored."""
    return "".join(reference.split()).casefold()


async def record_referral(
    session: AsyncSession,
    *,
    incident: Incident,
    action: IncidentAction,
    author: Staff,
    agency: Agency,
    referred_at: dt.datetime,
    reference: str | None,
    working: WorkingTime,
    cipher: Cipher,
    now: dt.datetime | None = None,
) -> Referral:
    """A new referral, due by the agency's timescale in working time (key-holders only).

    The reference is stored sealed, bound to the row, with its keyed hash (the caseload's
    filter)."""
    now = now or utcnow()
    await _only_the_safeguarding_team(session, author=author, incident_id=incident.id)
    check_referred_at(referred_at, now=now)
    referral = Referral(
        workspace_id=incident.workspace_id,
        incident_id=incident.id,
        action_id=action.id,
        agency=agency.name,
        referred_at=referred_at,
        timescale=agency.timescale.describe(),
        due_at=agency.timescale.due(referred_at, working),
        status=AWAITING,
        created_by_id=author.id,
        created_at=now,
    )
    noted = (reference or "").strip()[:100] or None
    await keyring.seal(session, cipher, referral, {Referral.reference_ct: noted})
    if noted is not None:
        key = await textsearch.search_key(
            session, workspace_id=incident.workspace_id, cipher=cipher
        )
        referral.reference_hash = textsearch.exact_hash(key, "reference", normal_reference(noted))
    await session.flush()
    _event(
        session,
        referral,
        ReferralEventKind.REFERRED,
        now=now,
        actor=author,
        action=action,
        detail=f"due by {agency.timescale.describe()}",
    )
    return referral


async def record_outcome(
    session: AsyncSession,
    *,
    referral: Referral,
    action: IncidentAction,
    author: Staff,
    outcome: ReferralEventKind,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Referral:
    """The agency responded (`outcome` RESPONSE, at `at`), or the referral is CLOSED
    (key-holders only)."""
    now = now or utcnow()
    await _only_the_safeguarding_team(session, author=author, incident_id=referral.incident_id)
    at = at or now
    check_outcome(referral, outcome=outcome, at=at, now=now)
    if outcome in (ReferralEventKind.RESPONSE, ReferralEventKind.CONSULTED):
        referral.status = RESPONDED
        referral.responded_at = at
    else:
        referral.status = CLOSED
        referral.closed_at = now
    _event(session, referral, outcome, now=now, actor=author, action=action)
    await session.flush()
    return referral


async def snooze(
    session: AsyncSession,
    *,
    referral_id: int,
    staff: Staff,
    working: WorkingTime,
    now: dt.datetime | None = None,
) -> Referral:
    """Hold the nudges for one working day (key-holders only)."""
    now = now or utcnow()
    referral = await session.scalar(
        select(Referral).where(
            Referral.id == referral_id, Referral.workspace_id == staff.workspace_id
        )
    )
    if referral is None or not may_change_referrals(staff.role_set):
        raise InvalidReferral({"referral": "No such referral."})
    visible = await session.scalar(
        visible_incident_ids(staff).where(Incident.id == referral.incident_id)
    )
    if visible is None:  # an allegation they may not see: as if there were no such referral
        raise InvalidReferral({"referral": "No such referral."})
    if referral.status != AWAITING:
        raise InvalidReferral({"referral": "That referral is no longer waiting."})
    start = max(now, referral.snoozed_until or now)
    referral.snoozed_until = working.add_working_days(start, 1)
    _event(
        session,
        referral,
        ReferralEventKind.SNOOZED,
        now=now,
        actor=staff,
        detail=f"until {referral.snoozed_until.isoformat(timespec='minutes')}",
    )
    await session.flush()
    return referral


@dataclass(frozen=True)
class ReferralSummary:
    """What may be shown in Slack of a referral: ids, agency, how overdue."""

    referral_id: int
    incident_number: int
    agency: str
    due_at: dt.datetime
    overdue_days: int


async def overdue(
    session: AsyncSession,
    *,
    workspace_id: int,
    working: WorkingTime,
    now: dt.datetime | None = None,
    limit: int = 20,
    viewer: Staff | None = None,
) -> list[ReferralSummary]:
    """Referrals past due with no response, most overdue first (those `viewer` may see)."""
    now = now or utcnow()
    rows = await session.execute(
        select(Referral.id, Incident.number, Referral.agency, Referral.due_at)
        .join(Incident, Incident.id == Referral.incident_id)
        .where(
            Referral.workspace_id == workspace_id,
            Referral.status == AWAITING,
            Referral.due_at <= now,
            in_view(Referral.incident_id, viewer),
        )
        .order_by(Referral.due_at, Referral.id)
        .limit(limit)
    )
    return [
        ReferralSummary(rid, number, agency, due, working.working_days_between(due, now))
        for rid, number, agency, due in rows
    ]


async def for_incident(
    session: AsyncSession, *, incident_id: int
) -> list[tuple[Referral, list[ReferralEvent]]]:
    """The incident's referrals, oldest first, each with its history."""
    referrals = list(
        (
            await session.scalars(
                select(Referral)
                .where(Referral.incident_id == incident_id)
                .order_by(Referral.referred_at, Referral.id)
            )
        ).all()
    )
    events: dict[int, list[ReferralEvent]] = {r.id: [] for r in referrals}
    if referrals:
        for event in await session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id.in_(list(events)))
            .order_by(ReferralEvent.at, ReferralEvent.id)
        ):
            events[event.referral_id].append(event)
    return [(r, events[r.id]) for r in referrals]


async def open_for_incident(
    session: AsyncSession, *, incident_id: int, lock: bool = False
) -> dict[int, Referral]:
    """The incident's referrals not yet closed, by id, oldest first.

    `lock` holds them (PostgreSQL) until the transaction ends, so two people answering
    the same referral at once are taken one after the other.
    """
    query = (
        select(Referral)
        .where(Referral.incident_id == incident_id, Referral.status != CLOSED)
        .order_by(Referral.referred_at, Referral.id)
    )
    rows = await session.scalars(query.with_for_update() if lock else query)
    return {r.id: r for r in rows}


async def board(
    session: AsyncSession,
    *,
    workspace_id: int,
    now: dt.datetime | None = None,
    viewer: Staff | None = None,
) -> Sequence[tuple[Referral, int]]:
    """Referrals still waiting: overdue first (most overdue first), then soonest due (of
    the incidents `viewer` may see)."""
    rows = await session.execute(
        select(Referral, Incident.number)
        .join(Incident, Incident.id == Referral.incident_id)
        .where(
            Referral.workspace_id == workspace_id,
            Referral.status == AWAITING,
            in_view(Referral.incident_id, viewer),
        )
        .order_by(Referral.due_at, Referral.id)
    )
    return [(referral, number) for referral, number in rows]


# -- the overdue check --------------------------------------------------------------------


async def nudge_overdue(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime | None = None,
    limit: int = NUDGE_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Nudge up to `limit` overdue referrals not yet nudged this working day
    (`store.nudges.nudge_due`: claimed `FOR UPDATE SKIP LOCKED`, so replicas share the
    work; the unique (referral, working day) key on `nudges` makes a second nudge the same
    day impossible even so). Each referral's nudge DMs go into the outbox in this
    transaction. Returns how many referrals were nudged.
    """
    return await nudge_due(
        session,
        _OverdueReferrals(config, public_url),
        working=config.working_time,
        now=now,
        limit=limit,
        workspace_id=workspace_id,
    )


@dataclass(frozen=True)
class _NudgePlan:
    overdue_days: int
    escalate: bool
    people: list[Staff]
    payload: Message


class _OverdueReferrals(Nudger[Referral, _NudgePlan]):
    model = Referral
    failed_event, row_name = "referrals.nudge_failed", "referral"

    def __init__(self, config: SchoolConfig, public_url: str) -> None:
        self.config, self.public_url = config, public_url
        self.numbers: dict[int, int] = {}
        self.recipients: dict[tuple[int, bool], list[Staff]] = {}

    def due(self, day: NudgeDay) -> Sequence[ColumnElement[bool]]:
        return (
            Referral.status == _AWAITING_LITERAL,
            Referral.due_at <= day.now,
            # An allegation's referrals go to its manager (`store.allegations`).
            ~is_allegation(Referral.incident_id),
        )

    def order(self) -> Sequence[Any]:
        return (Referral.due_at, Referral.id)

    async def prepare(self, session: AsyncSession, rows: Sequence[Referral], day: NudgeDay) -> None:
        self.numbers = dict(
            (
                await session.execute(
                    select(Incident.id, Incident.number).where(
                        Incident.id.in_({r.incident_id for r in rows})
                    )
                )
            ).all()
        )

    async def plan(self, session: AsyncSession, row: Referral, day: NudgeDay) -> _NudgePlan:
        overdue_days = day.working.working_days_between(row.due_at, day.now)
        escalate = overdue_days >= self.config.escalate_after_working_days
        key = (row.workspace_id, escalate)
        if key not in self.recipients:
            self.recipients[key] = await nudge_recipients(
                session, workspace_id=row.workspace_id, escalate=escalate
            )
        payload = messages.nudge(
            referral_id=row.id,
            number=self.numbers[row.incident_id],
            agency=row.agency,
            overdue_days=overdue_days,
            public_url=self.public_url,
        )
        people = [s for s in self.recipients[key] if s.slack_user_id]
        return _NudgePlan(overdue_days, escalate, people, payload)

    def send(self, session: AsyncSession, row: Referral, day: NudgeDay, plan: _NudgePlan) -> None:
        session.add(
            Nudge(
                referral_id=row.id,
                work_day=day.today,
                overdue_days=plan.overdue_days,
                recipients=len(plan.people),
                escalated=plan.escalate,
                created_at=day.now,
            )
        )
        _event(
            session,
            row,
            ReferralEventKind.NUDGED,
            now=day.now,
            detail=f"{plan.overdue_days} working days overdue; {len(plan.people)} told"
            + ("; escalated" if plan.escalate else ""),
        )
        outbox.dm_each(
            session,
            workspace_id=row.workspace_id,
            people=plan.people,
            payload=plan.payload,
            kind=outbox.NUDGE,
            incident_id=row.incident_id,
            now=day.now,
        )
