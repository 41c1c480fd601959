"""Referrals as the pages show them: state, how overdue, whether snoozed, and history.

`incident_rows` for the incident page's Referrals section, `board_rows` for the
key-holders' referrals board. Rows carry agency names, times and staff names only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import referrals
from store.enums import ReferralStatus
from store.models import Referral, ReferralEvent, Staff
from store.staff import staff_names
from store.workdays import WorkingTime

EVENT_LABELS = {
    "referred": "Referred",
    "response": "Agency responded",
    "closed": "Closed",
    "snoozed": "Reminders snoozed",
    "nudged": "Overdue reminder sent",
    "consulted": "Consultation held",
    "not_needed": "No referral needed (the reason is in the action)",
}


def working_days_text(days: int) -> str:
    """`1 working day`, `3 working days`."""
    return f"{days} working day" if days == 1 else f"{days} working days"


@dataclass(frozen=True)
class HistoryRow:
    at: dt.datetime
    label: str
    actor: str | None
    detail: str | None
    until: dt.datetime | None  # a snooze's end, shown as a time


@dataclass(frozen=True)
class ReferralRow:
    """A referral as a page shows it."""

    referral: Referral
    number: int
    state: str  # waiting, overdue, responded, closed
    overdue_days: int | None
    snoozed: bool
    history: list[HistoryRow]

    @property
    def id(self) -> int:
        return self.referral.id

    @property
    def consultation(self) -> bool:
        """A LADO consultation on an allegation, not yet held or decided."""
        return self.referral.status == ReferralStatus.CONSULT

    @property
    def state_text(self) -> str:
        if self.state == "overdue":
            days = self.overdue_days or 0
            what = "Consultation overdue" if self.consultation else "Overdue"
            return f"{what} (due today)" if days <= 0 else f"{what} by {working_days_text(days)}"
        if self.referral.status == ReferralStatus.CONSULT:
            return "Consultation due"
        return {"waiting": "Waiting", "responded": "Responded", "closed": "Closed"}[self.state]


def _state(referral: Referral, working: WorkingTime, now: dt.datetime) -> tuple[str, int | None]:
    """waiting, overdue (with working days overdue), responded or closed."""
    if referral.status == ReferralStatus.RESPONDED:
        return "responded", None
    if referral.status == ReferralStatus.CLOSED:
        return "closed", None
    if referral.due_at <= now:
        return "overdue", working.working_days_between(referral.due_at, now)
    return "waiting", None


def _until(event: ReferralEvent) -> dt.datetime | None:
    """The end of a snooze, from its event's detail ("until <ISO time>")."""
    if event.kind != "snoozed" or not event.detail:
        return None
    try:
        value = dt.datetime.fromisoformat(event.detail.removeprefix("until").strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


async def incident_rows(
    session: AsyncSession,
    *,
    incident_id: int,
    number: int,
    working: WorkingTime,
    now: dt.datetime,
) -> list[ReferralRow]:
    """The incident's referrals, oldest first, each with its state and history."""
    found = await referrals.for_incident(session, incident_id=incident_id)
    names = await staff_names(
        session, ids={e.actor_id for _, events in found for e in events if e.actor_id}
    )
    rows = []
    for referral, events in found:
        state, days = _state(referral, working, now)
        history = [
            HistoryRow(
                at=e.at,
                label=EVENT_LABELS.get(e.kind, e.kind),
                actor=names.get(e.actor_id) if e.actor_id else None,
                detail=None if _until(e) else e.detail,
                until=_until(e),
            )
            for e in events
        ]
        snoozed = bool(
            referral.status == ReferralStatus.AWAITING
            and referral.snoozed_until
            and referral.snoozed_until > now
        )
        rows.append(ReferralRow(referral, number, state, days, snoozed, history))
    return rows


async def board_rows(
    session: AsyncSession,
    *,
    workspace_id: int,
    working: WorkingTime,
    now: dt.datetime,
    viewer: Staff | None = None,
) -> list[ReferralRow]:
    """Referrals waiting for an agency: overdue first (most overdue first), then soonest due."""
    rows = []
    waiting = await referrals.board(session, workspace_id=workspace_id, now=now, viewer=viewer)
    for referral, number in waiting:
        state, days = _state(referral, working, now)
        snoozed = bool(referral.snoozed_until and referral.snoozed_until > now)
        rows.append(ReferralRow(referral, number, state, days, snoozed, []))
    rows.sort(
        key=lambda r: (
            r.state != "overdue",
            -(r.overdue_days or 0),
            r.referral.due_at,
            r.referral.id,
        )
    )
    return rows
