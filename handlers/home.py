"""The App Home tab: the person's unread alerts, how many open tasks (and, for
key-holders, overdue referrals and alerts on restricted categories still unopened after
their reminder)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.context import deps_of, staff_of, workspace_of
from store import alerts, messages, referrals, tasks, unread
from store.access import is_keyholder


async def publish_home(client: AsyncWebClient, context: AsyncBoltContext) -> None:
    """Render and publish the Home tab for the person in `context`."""
    deps = deps_of(context)
    user_id = context.user_id or ""
    async with deps.factory() as session:
        mine = await alerts.unread_for(
            session, workspace_id=workspace_of(context), slack_user_id=user_id, limit=21
        )
        staff = await staff_of(context, session)
        keyholder = staff is not None and is_keyholder(staff.role_set)
        overdue = (
            await referrals.overdue(
                session,
                workspace_id=workspace_of(context),
                working=deps.school_of(workspace_of(context)).config.working_time,
                now=deps.clock(),
                viewer=staff,
            )
            if keyholder
            else None
        )
        open_tasks = await tasks.open_count(session, staff=staff) if staff is not None else 0
        unopened = (
            await unread.chased_unopened(session, workspace_id=workspace_of(context), limit=20)
            if keyholder
            else None
        )
    view = messages.home_view(
        unread=mine[:20],
        public_url=deps.public_url,
        command=deps.command,
        total_unread=None if len(mine) <= 20 else len(mine),
        overdue=overdue,
        unopened=unopened,
        open_tasks=open_tasks,
    )
    await client.views_publish(user_id=user_id, view=view)


async def home_opened(
    event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """`app_home_opened`: publish the Home tab (not for the Messages tab)."""
    if event.get("tab") != "home":
        return
    await publish_home(client, context)
