"""What every Slack listener gets from Bolt's context, resolved once per request.

`team_guard` runs before any listener: it refuses workspaces Vigil does not serve and
puts the application's `Deps` and the workspace's id into the context. In OAuth mode
Bolt has already found the request's installation (an uninstalled workspace never gets
here); a team of an Enterprise Grid org with Vigil installed org-wide becomes its own
workspace (school) on its first request, named from `team.info`. Slack's notices that
the app was uninstalled go through to their listener (`handlers.installs`). The member of
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
from store import installations
from store.db import DATABASE_ERRORS, transaction
from store.models import Staff
from store.staff import get_staff_by_slack_id

log = structlog.get_logger(__name__)

NOT_SERVED = "Vigil is not set up for this Slack workspace."
REVOCATION_EVENTS = frozenset({"app_uninstalled", "tokens_revoked"})
DEPS, WORKSPACE, STAFF = "vigil_deps", "vigil_workspace_id", "vigil_staff"


def team_guard(deps: Deps) -> Callable[..., Awaitable[Any]]:
    """Bolt middleware: only known workspaces reach the listeners, with `deps` in hand."""

    async def guard(
        req: AsyncBoltRequest, context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]
    ) -> Any:
        oauth = deps.teams.installed_by_oauth
        if oauth and (req.body.get("event") or {}).get("type") in REVOCATION_EVENTS:
            context[DEPS] = deps
            return await next()
        team_id = context.team_id or (oauth and _team_in(req.body)) or None
        try:
            workspace_id = await deps.teams.lookup(team_id)
            if workspace_id is None and oauth and team_id and context.enterprise_id:
                workspace_id = await _join_org(deps, context, team_id)
        except DATABASE_ERRORS as error:  # an unfamiliar team while the database is down
            log.warning("slack.database_unavailable", kind="guard", error=type(error).__name__)
            return BoltResponse(status=503, body="")
        if workspace_id is not None:
            if deps.schools is not None:  # its file is named after its team
                deps.schools.learn(workspace_id, context.team_id or "")
            context[DEPS] = deps
            context[WORKSPACE] = workspace_id
            return await next()
        log.warning("slack.unknown_workspace", team=team_id)
        if req.body.get("command"):
            return BoltResponse(status=200, body=NOT_SERVED)
        return BoltResponse(status=403, body="")

    return guard


def _team_in(body: dict[str, Any]) -> str | None:
    """The team a request from an org-wide installation comes from (Bolt's context has
    none for events: their authorization is the org's)."""
    for found in (
        body.get("context_team_id"),
        (body.get("user") or {}).get("team_id") if isinstance(body.get("user"), dict) else None,
        body.get("team_id"),
    ):
        if isinstance(found, str) and found:
            return found
    return None


async def _join_org(deps: Deps, context: AsyncBoltContext, team_id: str) -> int | None:
    """A team of an org Vigil is installed in org-wide, seen for the first time."""
    if context.authorize_result is None or not context.enterprise_id:
        return None
    team = await context.client.team_info(team=team_id)
    name = str((team.get("team") or {}).get("name") or team_id)
    async with transaction(deps.factory) as session:
        workspace_id = await installations.join_org_team(
            session,
            enterprise_id=context.enterprise_id,
            team_id=team_id,
            name=name,
            now=deps.clock(),
        )
    if workspace_id is not None:
        deps.teams.remember(team_id, workspace_id)
        log.info("slack.org_team_joined", team=team_id, workspace=workspace_id)
    return workspace_id


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
