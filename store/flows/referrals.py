"""Referrals waiting for an agency: the key-holders' board, and snoozing a referral's
overdue nudges from the Slack button (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, incidents, messages, outbox, referrals
from store.access import is_keyholder
from store.flows import Pressed, Visit
from store.models import Referral
from store.referral_rows import ReferralRow, board_rows
from store.referrals import InvalidReferral


async def view_board(session: AsyncSession, *, visit: Visit) -> list[ReferralRow]:
    """The referrals board (overdue first), audited."""
    rows = await board_rows(
        session,
        workspace_id=visit.staff.workspace_id,
        working=visit.setup.school.working_time,
        now=visit.now,
        viewer=visit.staff,
    )
    await visit.trail(session).write("referrals.view", detail=f"{len(rows)} waiting")
    return rows


@dataclass(frozen=True)
class Snooze:
    """A snooze done (`referral`), or refused: why (for key-holders), and audited."""

    referral: Referral | None
    reason: str  # why it was refused, worth telling a key-holder ("" if not)
    keyholder: bool


async def snooze(session: AsyncSession, pressed: Pressed) -> Snooze:
    """Hold a referral's (`pressed.row_id`) nudges for one working day (key-holders only),
    audited.

    `pressed.message` is the nudge's (channel, ts): the message is updated in place to say
    so, through the outbox. A refusal changes nothing but the audit log.
    """
    referral_id, staff, now, setup = pressed.row_id, pressed.staff, pressed.now, pressed.setup
    workspace_id, slack_user_id = pressed.workspace_id, pressed.slack_user_id
    nudge_message = pressed.message
    keyholder = staff is not None and is_keyholder(staff.role_set)
    working = setup.school.working_time
    try:
        if staff is None or referral_id is None:
            raise InvalidReferral({})
        referral = await referrals.snooze(
            session, referral_id=referral_id, staff=staff, working=working, now=now
        )
    except InvalidReferral as refused:
        trail = audit.Trail(
            session, actor=staff, now=now, workspace_id=workspace_id, actor_slack_id=slack_user_id
        )
        detail = f"referral {referral_id}" if referral_id is not None else "not a referral"
        trail.add("referral.snooze", audit.REFUSED, detail=detail)
        return Snooze(None, refused.errors.get("referral", ""), keyholder)
    audit.Trail(session, actor=staff, incident_id=referral.incident_id, now=now).add(
        "referral.snooze", detail=f"referral {referral.id}"
    )
    if nudge_message is not None:
        channel, ts = nudge_message
        number = await incidents.number_of(session, incident_id=referral.incident_id)
        payload = messages.nudge(
            referral_id=referral.id,
            number=number or 0,
            agency=referral.agency,
            overdue_days=working.working_days_between(referral.due_at, now),
            public_url=setup.public_url,
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
