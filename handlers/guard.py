"""Refuse Slack requests from workspaces Vigil does not serve, before any listener runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from store.db import DATABASE_ERRORS
from store.workspaces import TeamDirectory

log = structlog.get_logger(__name__)

NOT_SERVED = "Vigil is not set up for this Slack workspace."


def team_guard(teams: TeamDirectory) -> Callable[..., Awaitable[Any]]:
    """Bolt middleware: only known workspaces reach the listeners."""

    async def guard(
        req: AsyncBoltRequest, context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]
    ) -> Any:
        try:
            known = context.team_id and await teams.lookup(context.team_id) is not None
        except DATABASE_ERRORS as error:  # an unfamiliar team while the database is down
            log.warning("slack.database_unavailable", kind="guard", error=type(error).__name__)
            return BoltResponse(status=503, body="")
        if known:
            return await next()
        log.warning("slack.unknown_workspace", team=context.team_id)
        if req.body.get("command"):
            return BoltResponse(status=200, body=NOT_SERVED)
        return BoltResponse(status=403, body="")

    return guard
