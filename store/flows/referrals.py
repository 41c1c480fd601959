"""Referrals waiting for an agency: the key-holders' board, and snoozing a referral's
overdue nudges from the Slack button (DESIGN §6)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, incidents, messages, outbox, referrals
from store.access import is_keyholder
from store.models import Referral, Staff
from store.referral_rows import ReferralRow, board_rows
from store.referrals import InvalidReferral
from store.workdays import WorkingTime


async def view_board(
    session: AsyncSession, *, viewer: Staff, working: WorkingTime, ip: str | None, now: dt.datetime
) -> list[ReferralRow]:
    """The referrals board (overdue first), audited."""
    rows = await board_rows(session, workspace_id=viewer.workspace_id, working=working, now=now)
    audit.record(
        session, action="referrals.view", actor=viewer, ip=ip, detail=f"{len(rows)} waiting"
    )
    return rows


@dataclass(frozen=True)
class Snooze:
    """A snooze done (`referral`), or refused: why (for key-holders), and audited."""

    referral: Referral | None
    reason: str  # why it was refused, worth telling a key-holder ("" if not)
    keyholder: bool


async def snooze(
    session: AsyncSession,
    *,
    referral_id: int | None,
    staff: Staff | None,
    workspace_id: int,
    slack_user_id: str,
    working: WorkingTime,
    public_url: str,
    nudge_message: tuple[str, str] | None,
    now: dt.datetime,
) -> Snooze:
    """Hold a referral's nudges for one working day (key-holders only), audited.

    `nudge_message` is the nudge's (channel, ts): the message is updated in place to say
    so, through the outbox. A refusal changes nothing but the audit log.
    """
    keyholder = staff is not None and is_keyholder(staff.role_set)
    try:
        if staff is None or referral_id is None:
            raise InvalidReferral({})
        referral = await referrals.snooze(
            session, referral_id=referral_id, staff=staff, working=working, now=now
        )
    except InvalidReferral as refused:
        audit.record(
            session,
            action="referral.snooze",
            outcome=audit.REFUSED,
            workspace_id=workspace_id,
            actor=staff,
            actor_slack_id=slack_user_id,
            detail=f"referral {referral_id}" if referral_id is not None else "not a referral",
            now=now,
        )
        return Snooze(None, refused.errors.get("referral", ""), keyholder)
    audit.record(
        session,
        action="referral.snooze",
        actor=staff,
        incident_id=referral.incident_id,
        detail=f"referral {referral.id}",
        now=now,
    )
    if nudge_message is not None:
        channel, ts = nudge_message
        number = await incidents.number_of(session, incident_id=referral.incident_id)
        payload = messages.nudge(
            referral_id=referral.id,
            number=number or 0,
            agency=referral.agency,
            overdue_days=working.working_days_between(referral.due_at, now),
            public_url=public_url,
            snoozed_until=referral.snoozed_until,
        )
        outbox.enqueue(
            session,
            workspace_id=referral.workspace_id,
            kind=outbox.MESSAGE_UPDATE,
            channel=channel,
            incident_id=referral.incident_id,
            payload={**payload, "ts": ts},
            now=now,
        )
    return Snooze(referral, "", keyholder)
