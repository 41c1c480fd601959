"""What every Slack listener gets from Bolt's context, resolved once per request.

`team_guard` runs before any listener: it refuses workspaces Vigil does not serve and
puts the application's `Deps` and the workspace's id into the context. The member of
staff asking is looked up once, when a listener first asks (`staff_of`), not up front:
the `/concern` command opens its modal before any database work (the trigger expires
about 3 s after the command).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.deps import Deps
from store.db import DATABASE_ERRORS
from store.models import Staff
from store.staff import get_staff_by_slack_id

log = structlog.get_logger(__name__)

NOT_SERVED = "Vigil is not set up for this Slack workspace."
DEPS, WORKSPACE, STAFF = "vigil_deps", "vigil_workspace_id", "vigil_staff"


def team_guard(deps: Deps) -> Callable[..., Awaitable[Any]]:
    """Bolt middleware: only known workspaces reach the listeners, with `deps` in hand."""

    async def guard(
        req: AsyncBoltRequest, context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]
    ) -> Any:
        try:
            workspace_id = await deps.teams.lookup(context.team_id)
        except DATABASE_ERRORS as error:  # an unfamiliar team while the database is down
            log.warning("slack.database_unavailable", kind="guard", error=type(error).__name__)
            return BoltResponse(status=503, body="")
        if workspace_id is not None:
            if deps.schools is not None:  # its file is named after its team
                deps.schools.learn(workspace_id, context.team_id or "")
            context[DEPS] = deps
            context[WORKSPACE] = workspace_id
            return await next()
        log.warning("slack.unknown_workspace", team=context.team_id)
        if req.body.get("command"):
            return BoltResponse(status=200, body=NOT_SERVED)
        return BoltResponse(status=403, body="")

    return guard


def deps_of(context: AsyncBoltContext) -> Deps:
    """The assembled application's dependencies."""
    deps: Deps = context[DEPS]
    return deps


def workspace_of(context: AsyncBoltContext) -> int:
    """The id of the workspace (school) the request comes from."""
    workspace_id: int = context[WORKSPACE]
    return workspace_id


async def staff_of(context: AsyncBoltContext, session: AsyncSession | None = None) -> Staff | None:
    """The active member of staff asking, looked up on first use (in `session`, if the
    listener has one open already); None if not staff."""
    if STAFF not in context:
        if session is None:
            async with deps_of(context).factory() as own:
                return await staff_of(context, own)
        context[STAFF] = await get_staff_by_slack_id(
            session, workspace_id=workspace_of(context), slack_user_id=context.user_id or ""
        )
    staff: Staff | None = context[STAFF]
    return staff
