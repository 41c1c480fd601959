"""Overdue nudges in Slack: **Snooze 1 working day** holds a referral's nudges."""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from handlers.deps import Deps
from store import audit, messages, outbox, referrals
from store.access import is_keyholder
from store.db import transaction
from store.models import Incident
from store.staff import get_staff_by_slack_id

log = structlog.get_logger(__name__)


def register(bolt: AsyncApp, deps: Deps) -> None:
    """Attach the nudge button listeners to the Bolt app."""

    @bolt.action(messages.SNOOZE_ACTION)
    async def snooze(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = deps.teams.cached(context.team_id)
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        message_ts = (body.get("container") or {}).get("message_ts")
        now = deps.clock()
        try:
            referral_id = int(body["actions"][0]["value"])
            async with transaction(deps.factory) as session:
                staff = (
                    await get_staff_by_slack_id(
                        session, workspace_id=workspace_id, slack_user_id=context.user_id or ""
                    )
                    if workspace_id is not None
                    else None
                )
                if staff is None:
                    raise referrals.InvalidReferral({"referral": "not staff"})
                referral = await referrals.snooze(
                    session,
                    referral_id=referral_id,
                    staff=staff,
                    working=deps.school.working_time,
                    now=now,
                )
                number = await session.scalar(
                    select(Incident.number).where(Incident.id == referral.incident_id)
                )
                audit.record(
                    session,
                    action="referral.snooze",
                    actor=staff,
                    incident_id=referral.incident_id,
                    detail=f"referral {referral.id}",
                    now=now,
                )
                if channel and message_ts:
                    payload = messages.nudge(
                        referral_id=referral.id,
                        number=int(number or 0),
                        agency=referral.agency,
                        overdue_days=deps.school.working_time.working_days_between(
                            referral.due_at, now
                        ),
                        public_url=deps.public_url,
                        snoozed_until=referral.snoozed_until,
                    )
                    outbox.enqueue(
                        session,
                        workspace_id=referral.workspace_id,
                        kind=outbox.MESSAGE_UPDATE,
                        channel=channel,
                        incident_id=referral.incident_id,
                        payload={**payload, "ts": message_ts},
                        now=now,
                    )
        except (referrals.InvalidReferral, KeyError, IndexError, ValueError) as refused:
            log.warning("referral.snooze_refused", user=context.user_id)
            keyholder = await _refuse(
                deps, workspace_id=workspace_id, user_id=context.user_id or "", body=body, now=now
            )
            reason = (refused.errors if isinstance(refused, referrals.InvalidReferral) else {}).get(
                "referral", ""
            )
            text = (
                f"{reason} Nothing was snoozed."
                if keyholder and reason
                else "Only the safeguarding team can snooze a waiting referral."
            )
            if channel and context.user_id:
                await client.chat_postEphemeral(channel=channel, user=context.user_id, text=text)
            return
        deps.notify_outbox()
        log.info("referral.snoozed", referral=referral.id)


async def _refuse(
    deps: Deps,
    *,
    workspace_id: int | None,
    user_id: str,
    body: dict[str, Any],
    now: dt.datetime,
) -> bool:
    """Audit a refused snooze; whether the person is on the safeguarding team."""
    if workspace_id is None:
        return False
    value = str(((body.get("actions") or [{}])[0] or {}).get("value", ""))[:20]
    async with transaction(deps.factory) as session:
        staff = await get_staff_by_slack_id(
            session, workspace_id=workspace_id, slack_user_id=user_id
        )
        audit.record(
            session,
            action="referral.snooze",
            outcome=audit.REFUSED,
            workspace_id=workspace_id,
            actor=staff,
            actor_slack_id=user_id,
            detail=f"referral {value}" if value.isdigit() else "not a referral",
            now=now,
        )
    return staff is not None and is_keyholder(staff.role_set)
