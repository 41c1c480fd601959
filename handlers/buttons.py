"""A button on one of Vigil's DMs that changes one row through one flow: a task's **Done**
and **Snooze** (`handlers.tasks`), a referral's **Snooze** (`handlers.referrals`).

`press` acknowledges, runs the flow in one transaction with a `store.flows.Pressed` (who
pressed, which row: the button's value, and which message, so the flow can update it
through the outbox), then wakes the delivery worker; a refusal is told to the presser
alone (the flow audits it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import deps_of, staff_of, workspace_of
from handlers.payload import button_value, channel_of, message_ts, tell_presser
from store.db import transaction
from store.flows import Pressed
from store.ids import parse_id

log = structlog.get_logger(__name__)

Done = TypeVar("Done")


async def press(
    ack: AsyncAck,
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    *,
    flow: Callable[[AsyncSession, Pressed], Awaitable[Done]],
    changed: Callable[[Done], int | None],
    refusal: Callable[[Done], str],
    logged: tuple[str, str, str],
) -> None:
    """Run `flow` for the pressed button. `changed` gives the id of the row changed (None:
    refused, and `refusal` says why to the presser); `logged` is (the event when changed,
    the row's name in it, the event when refused)."""
    await ack()
    deps = deps_of(context)
    channel, ts = channel_of(body), message_ts(body)
    async with transaction(deps.factory) as session:
        done = await flow(
            session,
            Pressed(
                row_id=parse_id(button_value(body)),
                staff=await staff_of(context, session),
                workspace_id=workspace_of(context),
                slack_user_id=context.user_id or "",
                setup=deps.setup_for(workspace_of(context)),
                message=(channel, ts) if channel and ts else None,
                now=deps.clock(),
            ),
        )
    event, row_name, refused_event = logged
    row_id = changed(done)
    if row_id is None:
        log.warning(refused_event, user=context.user_id)
        await tell_presser(client, body, context.user_id, refusal(done))
        return
    deps.notify_outbox()
    log.info(event, **{row_name: row_id})
