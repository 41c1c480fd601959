"""Tasks in Slack: **Done** on the assignee's DM, **Snooze 1 working day** on an overdue
task's nudge (`store.flows.tasks`). Each updates the message in place via the outbox; a
refusal is told to the presser alone, and audited by the flow."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.context import deps_of, staff_of, workspace_of
from handlers.payload import button_value, channel_of, message_ts, tell_presser
from store import messages
from store.db import transaction
from store.flows import tasks as flows
from store.ids import parse_id

log = structlog.get_logger(__name__)

NOT_SNOOZED = "Only the person the task is for, or the safeguarding team, can snooze it."


async def done(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The task DM's **Done** button: marks it done if the presser is its assignee."""
    await ack()
    deps = deps_of(context)
    channel, ts = channel_of(body), message_ts(body)
    async with transaction(deps.factory) as session:
        changed = await flows.mark_done(
            session,
            task_id=parse_id(button_value(body)),
            staff=await staff_of(context, session),
            workspace_id=workspace_of(context),
            slack_user_id=context.user_id or "",
            setup=deps.setup_for(workspace_of(context)),
            message=(channel, ts) if channel and ts else None,
            now=deps.clock(),
        )
    if changed.task is None:
        log.warning("task.done_refused", user=context.user_id)
        await tell_presser(client, body, context.user_id, messages.TASK_NOT_YOURS)
        return
    deps.notify_outbox()
    log.info("task.done", task=changed.task.id)


async def snooze(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """An overdue task nudge's **Snooze** button: holds its nudges for one working day."""
    await ack()
    deps = deps_of(context)
    channel, ts = channel_of(body), message_ts(body)
    async with transaction(deps.factory) as session:
        changed = await flows.snooze(
            session,
            task_id=parse_id(button_value(body)),
            staff=await staff_of(context, session),
            workspace_id=workspace_of(context),
            slack_user_id=context.user_id or "",
            setup=deps.setup_for(workspace_of(context)),
            message=(channel, ts) if channel and ts else None,
            now=deps.clock(),
        )
    if changed.task is None:
        log.warning("task.snooze_refused", user=context.user_id)
        await tell_presser(client, body, context.user_id, NOT_SNOOZED)
        return
    deps.notify_outbox()
    log.info("task.snoozed", task=changed.task.id)
