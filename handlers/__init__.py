"""What users touch: Slack listeners and web routes. Thin: parse, call `store`, render."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import alerts, concern, errors, home, referrals
from handlers.deps import Deps
from handlers.guard import team_guard


def register_slack(bolt: AsyncApp, deps: Deps) -> None:
    """Attach every Slack listener and the workspace guard."""
    errors.register(bolt)
    bolt.use(team_guard(deps.teams))
    concern.register(bolt, deps)
    alerts.register(bolt, deps)
    home.register(bolt, deps)
    referrals.register(bolt, deps)
