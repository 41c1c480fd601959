"""Slack telling Vigil it was uninstalled (OAuth mode): stop serving those schools.

`app_uninstalled`, or `tokens_revoked` naming a bot token, marks the installation
(`store.installations.uninstall`); its workspaces are then refused (Bolt finds no
installation for them, and the outbox sends nothing more with the revoked token).
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncBoltContext

from handlers.context import deps_of
from store import installations
from store.db import transaction

log = structlog.get_logger(__name__)


async def uninstalled(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """`app_uninstalled` / `tokens_revoked` (bot tokens): the installation is removed."""
    if event.get("type") == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
        return  # only user tokens: Vigil keeps none
    deps = deps_of(context)
    async with transaction(deps.factory) as session:
        teams = await installations.uninstall(
            session,
            enterprise_id=context.enterprise_id,
            team_id=context.team_id,
            is_enterprise_install=bool(context.is_enterprise_install),
            now=deps.clock(),
        )
    for team_id in teams:
        deps.teams.forget(team_id)
    deps.uninstalled()
    log.warning("slack.uninstalled", kind=event.get("type"), workspaces=len(teams))
