"""Overdue nudges in Slack: **Snooze 1 working day** holds a referral's nudges."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.buttons import press
from store.flows import referrals as flows

ONLY_KEYHOLDERS = "Only the safeguarding team can snooze a waiting referral."


async def snooze(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The nudge's **Snooze** button: one flow, which also updates the nudge in place."""
    await press(
        ack,
        body,
        client,
        context,
        flow=flows.snooze,
        changed=lambda done: done.referral.id if done.referral else None,
        refusal=lambda done: (
            f"{done.reason} Nothing was snoozed."
            if done.keyholder and done.reason
            else ONLY_KEYHOLDERS
        ),
        logged=("referral.snoozed", "referral", "referral.snooze_refused"),
    )
