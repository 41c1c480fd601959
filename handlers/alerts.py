"""Alert DMs: **Mark as read** records the receipt and updates the DM in place."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers import home
from handlers.context import deps_of, workspace_of
from handlers.payload import button_value, tell_presser
from store.db import transaction
from store.flows import alerts as flows
from store.ids import parse_id

log = structlog.get_logger(__name__)

NOT_YOURS = "Only the person this alert was sent to can mark it as read."


async def mark_read(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The **Mark as read** button, in the DM or on the Home tab."""
    await ack()
    deps = deps_of(context)
    async with transaction(deps.factory) as session:
        result = await flows.read_in_slack(
            session,
            alert_id=parse_id(button_value(body)),
            workspace_id=workspace_of(context),
            slack_user_id=context.user_id or "",
            public_url=deps.public_url,
        )
    if result is None:
        log.warning("alert.mark_read_refused", user=context.user_id)
        await tell_presser(client, body, context.user_id, NOT_YOURS)
        return
    if result.newly_read:
        deps.notify_outbox()
        log.info("alert.read", alert=result.alert_id, incident=result.number)
    if (body.get("view") or {}).get("type") == "home" and context.user_id:
        deps.spawn(home.publish_home(client, context))


async def open_link(ack: AsyncAck) -> None:
    """A link button: Slack opens the URL itself; the action only needs acknowledging."""
    await ack()
