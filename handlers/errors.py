"""What Slack is told when a listener fails: above all, when the database is down.

A listener that meets a database outage (PostgreSQL restarting, the network to it gone)
has committed nothing. The person is told so in words, in the way their Slack surface
allows, and asked to try again; Slack's own retries are used where it has them:

- a command gets an ephemeral answer;
- a button press an ephemeral message in its channel (the press is not recorded);
- a pupil search no options (Slack shows "No results");
- an event a 503, so Slack sends it again later;
- a modal submission a 503, so the modal stays open with what was typed (Slack shows
  its own "trouble connecting" notice): closing it would lose the report. The concern
  form itself answers with a field error before it gets here (`handlers.concern`).

A Slack API call a listener makes that Slack refuses (an odd value in a payload) is
answered with an empty 200 and logged by Slack's error code alone. Other failures are
logged with their traceback and the request kind, never the payload (the engine hides
bound values from database errors), and answered with a 500.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.payload import channel_of, slack_error
from store.db import DATABASE_ERRORS

log = structlog.get_logger(__name__)

UNAVAILABLE = (
    "Vigil can't reach its database just now, so that didn't go through. Please try again "
    "in a minute. If a child is at risk, tell a DSL in person now."
)


def request_kind(body: dict[str, Any]) -> str:
    """`command`, `block_actions`, `view_submission`, `event:app_home_opened`, ..."""
    if body.get("command"):
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        return f"event:{(body.get('event') or {}).get('type', 'unknown')}"
    return kind


async def tell_unavailable(client: AsyncWebClient, body: dict[str, Any]) -> None:
    """An ephemeral "try again" to the person who pressed a button, where Slack can show it."""
    channel = channel_of(body)
    user = (body.get("user") or {}).get("id")
    if not channel or not user:
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=UNAVAILABLE)
    except SlackApiError as error:
        log.warning("slack.unavailable_notice_failed", error=slack_error(error))


async def on_error(error: Exception, body: dict[str, Any], client: AsyncWebClient) -> BoltResponse:
    """Bolt's global error handler: log (never the payload) and answer as above."""
    kind = request_kind(body)
    if isinstance(error, SlackApiError):
        # Slack refused a call a listener made (an odd value in the payload): answered
        # cleanly, logged by its error code only, never the payload or Slack's response.
        log.warning("slack.api_call_refused", kind=kind, error=slack_error(error))
        return BoltResponse(status=200, body="")
    if not isinstance(error, DATABASE_ERRORS):
        log.exception("slack.listener_failed", kind=kind, error=type(error).__name__)
        return BoltResponse(status=500, body="")
    log.warning("slack.database_unavailable", kind=kind, error=type(error).__name__)
    if kind == "command":
        return BoltResponse(status=200, body=UNAVAILABLE)
    if kind == "block_suggestion":
        return BoltResponse(
            status=200,
            body=json.dumps({"options": []}),
            headers={"content-type": "application/json;charset=utf-8"},
        )
    if kind == "block_actions":
        await tell_unavailable(client, body)
        return BoltResponse(status=200, body="")
    return BoltResponse(status=503, body="")
