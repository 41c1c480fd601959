"""Reading a Slack interaction's payload: which button, in which message (trusting nothing:
a forged payload reads as no value, no channel); answering the person who pressed it; and
what of a Slack API error may be logged (its error code: never the request or response)."""

from __future__ import annotations

from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = structlog.get_logger(__name__)


def button_value(body: dict[str, Any]) -> str:
    """The value of the button pressed ("" if none)."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    return str(first.get("value", "")) if isinstance(first, dict) else ""


def _part(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    return value if isinstance(value, dict) else {}


def channel_of(body: dict[str, Any]) -> str | None:
    """The channel the button's message is in, if it is in one."""
    return _part(body, "channel").get("id") or _part(body, "container").get("channel_id")


def message_ts(body: dict[str, Any]) -> str | None:
    """The timestamp of the button's message (to update it in place)."""
    return _part(body, "container").get("message_ts")


async def tell_presser(
    client: AsyncWebClient, body: dict[str, Any], user_id: str | None, text: str
) -> None:
    """Say `text` to the person who pressed the button, in its channel, seen only by them
    (nothing when the payload names no channel)."""
    channel = channel_of(body)
    if not (channel and user_id):
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user_id, text=text)
    except SlackApiError as error:  # a channel the bot is not in, an odd id: nothing to say
        log.warning("slack.ephemeral_failed", error=slack_error(error))


def slack_error(error: SlackApiError) -> str:
    """Slack's error code (`invalid_trigger_id`, `channel_not_found`), for the log: the
    exception's own text quotes Slack's whole response."""
    response = error.response
    code = response.get("error") if hasattr(response, "get") else None
    return str(code or "unknown")[:60]
