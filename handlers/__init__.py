"""What users touch: Slack listeners and web routes. Thin: parse, call `store`, render.

Every Slack listener is a module-level function, registered here, in one place. Each
finds what it needs in Bolt's context (`handlers.context`: the application's deps, the
workspace, and the member of staff asking, resolved once per request). The web view's
routes are registered in `handlers.web`.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import alerts, concern, concern_modal, errors, home, installs, referrals, tasks
from handlers.context import team_guard
from handlers.deps import Deps
from store import messages


def register_slack(bolt: AsyncApp, deps: Deps) -> None:
    """Attach the error handler, the workspace guard and every Slack listener."""
    bolt.error(errors.on_error)
    bolt.use(team_guard(deps))
    bolt.command(deps.command)(concern.concern_command)
    bolt.options(concern_modal.PUPIL_SEARCH)(concern.pupil_typeahead)
    bolt.options(concern_modal.ADULT_SEARCH)(concern.adult_typeahead)
    bolt.view(concern_modal.CALLBACK_ID)(concern.concern_submitted)
    bolt.action(messages.MARK_READ_ACTION)(alerts.mark_read)
    bolt.action(messages.OPEN_ACTION)(alerts.open_link)
    bolt.action(messages.BODY_MAP_ACTION)(alerts.open_link)
    bolt.action(messages.SNOOZE_ACTION)(referrals.snooze)
    bolt.action(messages.TASK_DONE_ACTION)(tasks.done)
    bolt.action(messages.TASK_SNOOZE_ACTION)(tasks.snooze)
    bolt.event("app_home_opened")(home.home_opened)
    if deps.teams.installed_by_oauth:  # installed from "Add to Slack": may be uninstalled
        bolt.event("app_uninstalled")(installs.uninstalled)
        bolt.event("tokens_revoked")(installs.uninstalled)
