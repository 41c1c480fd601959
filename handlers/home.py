"""The App Home tab: the person's unread alerts."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.deps import Deps
from store import alerts, messages, referrals
from store.access import is_keyholder
from store.staff import get_staff_by_slack_id

log = structlog.get_logger(__name__)


async def publish_home(client: AsyncWebClient, deps: Deps, *, team_id: str, user_id: str) -> None:
    """Render and publish the Home tab for one person."""
    workspace_id = deps.teams.cached(team_id)
    if workspace_id is None:
        return
    async with deps.factory() as session:
        unread = await alerts.unread_for(
            session, workspace_id=workspace_id, slack_user_id=user_id, limit=21
        )
        staff = await get_staff_by_slack_id(
            session, workspace_id=workspace_id, slack_user_id=user_id
        )
        overdue = (
            await referrals.overdue(
                session,
                workspace_id=workspace_id,
                working=deps.school.working_time,
                now=deps.clock(),
            )
            if staff is not None and is_keyholder(staff.role_set)
            else None
        )
    view = messages.home_view(
        unread=unread[:20],
        public_url=deps.public_url,
        command=deps.command,
        total_unread=None if len(unread) <= 20 else len(unread),
        overdue=overdue,
    )
    await client.views_publish(user_id=user_id, view=view)


def register(bolt: AsyncApp, deps: Deps) -> None:
    """Attach the App Home listener."""

    @bolt.event("app_home_opened")
    async def home_opened(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        if event.get("tab") != "home":
            return
        await publish_home(client, deps, team_id=context.team_id or "", user_id=event["user"])
