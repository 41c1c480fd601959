"""Overdue nudges in Slack: **Snooze 1 working day** holds a referral's nudges."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.context import deps_of, staff_of, workspace_of
from handlers.payload import button_value, channel_of, message_ts, tell_presser
from store.db import transaction
from store.flows import referrals as flows
from store.ids import parse_id

log = structlog.get_logger(__name__)

ONLY_KEYHOLDERS = "Only the safeguarding team can snooze a waiting referral."


async def snooze(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The nudge's **Snooze** button: one flow, which also updates the nudge in place."""
    await ack()
    deps = deps_of(context)
    channel, ts = channel_of(body), message_ts(body)
    async with transaction(deps.factory) as session:
        done = await flows.snooze(
            session,
            referral_id=parse_id(button_value(body)),
            staff=await staff_of(context, session),
            workspace_id=workspace_of(context),
            slack_user_id=context.user_id or "",
            setup=deps.setup_for(workspace_of(context)),
            nudge_message=(channel, ts) if channel and ts else None,
            now=deps.clock(),
        )
    if done.referral is None:
        log.warning("referral.snooze_refused", user=context.user_id)
        text = (
            f"{done.reason} Nothing was snoozed."
            if done.keyholder and done.reason
            else ONLY_KEYHOLDERS
        )
        await tell_presser(client, body, context.user_id, text)
        return
    deps.notify_outbox()
    log.info("referral.snoozed", referral=done.referral.id)
