"""Alert DMs: **Mark as read** records the receipt and updates the DM in place."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers import home
from handlers.deps import Deps
from store import alerts, audit, messages
from store.db import transaction

log = structlog.get_logger(__name__)


def register(bolt: AsyncApp, deps: Deps) -> None:
    """Attach the alert button listeners to the Bolt app."""

    @bolt.action(messages.MARK_READ_ACTION)
    async def mark_read(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = deps.teams.cached(context.team_id)
        try:
            alert_id = int(body["actions"][0]["value"])
            if workspace_id is None:
                raise alerts.AlertNotFound(alert_id)
            async with transaction(deps.factory) as session:
                result = await alerts.mark_read(
                    session,
                    alert_id=alert_id,
                    workspace_id=workspace_id,
                    slack_user_id=context.user_id or "",
                    public_url=deps.public_url,
                )
                if result.newly_read:
                    audit.record(
                        session,
                        action="alert.read",
                        workspace_id=workspace_id,
                        actor_slack_id=context.user_id,
                        incident_id=result.incident_id,
                        detail="slack",
                    )
        except (alerts.AlertNotFound, KeyError, IndexError, ValueError):
            log.warning("alert.mark_read_refused", user=context.user_id)
            channel = (body.get("channel") or {}).get("id")
            if channel and context.user_id:
                await client.chat_postEphemeral(
                    channel=channel,
                    user=context.user_id,
                    text="Only the person this alert was sent to can mark it as read.",
                )
            return
        if result.newly_read:
            deps.notify_outbox()
            log.info("alert.read", alert=result.alert_id, incident=result.number)
        if (body.get("view") or {}).get("type") == "home" and context.user_id:
            deps.spawn(
                home.publish_home(
                    client, deps, team_id=context.team_id or "", user_id=context.user_id
                )
            )

    @bolt.action(messages.OPEN_ACTION)
    async def open_link(ack: AsyncAck) -> None:
        # A link button: Slack opens the URL itself; the action only needs acknowledging.
        await ack()
