"""Tasks in Slack: **Done** on the assignee's DM, **Snooze 1 working day** on an overdue
task's nudge (`store.flows.tasks`). Each updates the message in place via the outbox; a
refusal is told to the presser alone, and audited by the flow (`handlers.buttons.press`)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.buttons import press
from store import messages
from store.flows import tasks as flows

NOT_SNOOZED = "Only the person the task is for, or the safeguarding team, can snooze it."


async def done(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """The task DM's **Done** button: marks it done if the presser is its assignee."""
    await press(
        ack,
        body,
        client,
        context,
        flow=flows.mark_done,
        changed=lambda changed: changed.task.id if changed.task else None,
        refusal=lambda _: messages.TASK_NOT_YOURS,
        logged=("task.done", "task", "task.done_refused"),
    )


async def snooze(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """An overdue task nudge's **Snooze** button: holds its nudges for one working day."""
    await press(
        ack,
        body,
        client,
        context,
        flow=flows.snooze,
        changed=lambda changed: changed.task.id if changed.task else None,
        refusal=lambda _: NOT_SNOOZED,
        logged=("task.snoozed", "task", "task.snooze_refused"),
    )
