"""Messages: ``chat.*``, ``conversations.open`` / ``conversations.history`` and response URLs.

:class:`ChatApi` keeps every message by (channel, ts) (:attr:`ChatApi.messages`) and the
ephemeral ones (:attr:`ChatApi.ephemerals`). A user id given as a channel means the app's
DM with them, as Slack allows. Message content is checked as Slack checks it (text or
blocks, Block Kit limits, metadata shape). ``response_url`` endpoints issued by
:meth:`ChatApi.register_response_url` answer as Slack's do (five uses each).
"""

from __future__ import annotations

import base64
import copy
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from testing.standin.blocks import fill_ids, validate_blocks
from testing.standin.calls import SlackApiFailure
from testing.standin.core import slack_method
from testing.standin.users import UsersApi, stable_id


@dataclass
class _ResponseUrl:
    channel_id: str
    user_id: str
    message_ts: str | None
    uses: int = 0


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int((fraction or "0").ljust(6, "0")[:6])


class ChatApi(UsersApi):
    """Channels and DMs with their messages, as the app and its users see them."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self._opened_dms: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._last_ts_us = 0

    def _routes(self) -> list[web.RouteDef]:
        return [*super()._routes(), web.post("/response/{key}", self._handle_response_url)]

    def _forget_state(self) -> None:
        super()._forget_state()
        self.messages.clear()
        self.ephemerals.clear()
        self._response_urls.clear()

    def messages_for_user(self, user_id: str) -> list[dict[str, Any]]:
        """Messages in the app's DM with ``user_id``, oldest first."""
        return self.messages_in(self.dm_channel_for(user_id))

    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        """Messages (including thread replies) in ``channel_id``, oldest first."""
        found = [m for (channel, _), m in self.messages.items() if channel == channel_id]
        return sorted(found, key=lambda m: _ts_key(m["ts"]))

    def add_user_message(
        self, channel: str, user_id: str, text: str, *, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Seed a message written by a person (not the bot); returns the stored message."""
        channel_id = self._resolve_channel(channel)
        message = {
            "type": "message",
            "channel": channel_id,
            "ts": self._next_ts(),
            "user": user_id,
            "team": self.team_id,
            "text": text,
        }
        if blocks is not None:
            message["blocks"] = copy.deepcopy(blocks)
        self.messages[(channel_id, message["ts"])] = message
        return message

    def register_response_url(
        self, *, channel_id: str, user_id: str, message_ts: str | None = None
    ) -> str:
        """Issue a ``response_url`` on this stand-in, as Slack includes in payloads."""
        key = secrets.token_urlsafe(16)
        self._response_urls[key] = _ResponseUrl(channel_id, user_id, message_ts)
        return f"{self.base_url}/response/{key}"

    def _next_ts(self) -> str:
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _resolve_channel(self, channel: Any) -> str:
        """Map a channel argument to a conversation id; users map to their DM."""
        if not isinstance(channel, str) or not channel:
            raise SlackApiFailure("channel_not_found")
        if channel[0] in "UW":
            if channel not in self.users or self.users[channel].get("is_bot"):
                raise SlackApiFailure("channel_not_found")
            return self.dm_channel_for(channel)
        if channel[0] == "D":
            if channel not in self._dm_users:
                raise SlackApiFailure("channel_not_found")
            return channel
        if channel[0] in "CG":
            return channel
        raise SlackApiFailure("channel_not_found")

    def _channel_not_user(self, params: dict[str, Any]) -> str:
        """The conversation id of ``params["channel"]``, which here must not be a user id
        (chat.update and conversations.history take no user in place of a DM)."""
        channel = params.get("channel")
        if not isinstance(channel, str) or channel[:1] in ("U", "W"):
            raise SlackApiFailure("channel_not_found")
        return self._resolve_channel(channel)

    @staticmethod
    def _public_message(message: dict[str, Any], *, with_metadata: bool = True) -> dict[str, Any]:
        public = {k: copy.deepcopy(v) for k, v in message.items() if k != "channel"}
        if not with_metadata:
            public.pop("metadata", None)
        return public

    @staticmethod
    def _check_message_content(params: dict[str, Any]) -> None:
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        if isinstance(text, str) and len(text) > 40000:
            raise SlackApiFailure("msg_too_long")
        if errors := validate_blocks(blocks, "/blocks", max_blocks=50):
            raise SlackApiFailure("invalid_blocks", messages=errors)
        metadata = params.get("metadata")
        if metadata not in (None, "", {}) and (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackApiFailure("invalid_metadata_format")

    def _bot_message(self, channel_id: str, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "channel": channel_id,
            "ts": self._next_ts(),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": params.get("text") or "",
        }
        if params.get("blocks"):
            message["blocks"] = fill_ids(params["blocks"])
        if params.get("attachments"):
            message["attachments"] = copy.deepcopy(params["attachments"])
        if params.get("metadata"):
            message["metadata"] = copy.deepcopy(params["metadata"])
        thread_ts = params.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            parent = self.messages.get((channel_id, str(thread_ts)))
            if parent is not None:
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
        return message

    @slack_method("chat.postMessage")
    async def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(params.get("channel"))
        self._check_message_content(params)
        message = self._bot_message(channel_id, params)
        self.messages[(channel_id, message["ts"])] = message
        self._opened_dms.add(channel_id)
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "message": self._public_message(message),
        }

    @slack_method("chat.update")
    async def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._channel_not_user(params)
        message = self.messages.get((channel_id, str(params.get("ts") or "")))
        if message is None:
            raise SlackApiFailure("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        self._check_message_content(params)
        if params.get("text") is not None:
            message["text"] = params["text"]
        for name in ("blocks", "attachments", "metadata"):
            if name in params:
                value = params[name]
                if value in ([], {}, "", None):
                    message.pop(name, None)
                else:
                    message[name] = fill_ids(value) if name == "blocks" else copy.deepcopy(value)
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "text": message["text"],
            "message": self._public_message(message),
        }

    @slack_method("chat.postEphemeral")
    async def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(params.get("channel"))
        user_id = str(params.get("user") or "")
        if user_id not in self.users:
            raise SlackApiFailure("user_not_in_channel")
        self._check_message_content(params)
        ts = self._next_ts()
        ephemeral = {
            "channel": channel_id,
            "user": user_id,
            "ts": ts,
            "text": params.get("text") or "",
        }
        if params.get("blocks"):
            ephemeral["blocks"] = fill_ids(params["blocks"])
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ts}

    @slack_method("conversations.open")
    async def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = params.get("users")
        if isinstance(users, list):
            user_ids = [str(u) for u in users]
        else:
            user_ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
        if not user_ids:
            if params.get("channel"):
                return {"ok": True, "channel": {"id": self._resolve_channel(params["channel"])}}
            raise SlackApiFailure("users_list_not_supplied")
        for user_id in user_ids:
            if user_id not in self.users:
                raise SlackApiFailure("user_not_found")
        if len(user_ids) == 1:
            channel_id = self.dm_channel_for(user_ids[0])
        else:
            channel_id = stable_id("G", ",".join(sorted(user_ids)))
        body: dict[str, Any] = {"ok": True, "channel": {"id": channel_id}}
        if channel_id in self._opened_dms:
            body.update(no_op=True, already_open=True)
        self._opened_dms.add(channel_id)
        return body

    @slack_method("conversations.history")
    async def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._channel_not_user(params)
        inclusive = _truthy(params.get("inclusive"))
        oldest = _ts_key(str(params.get("oldest") or "0"))
        latest = _ts_key(str(params.get("latest") or f"{time.time() + 1:.6f}"))
        limit = max(1, min(int(params.get("limit") or 100), 999))
        with_metadata = _truthy(params.get("include_all_metadata"))
        cursor = params.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor)).decode()
                latest, inclusive_latest = _ts_key(decoded.removeprefix("next_ts:")), False
            except (ValueError, UnicodeDecodeError):
                raise SlackApiFailure("invalid_cursor") from None
        else:
            inclusive_latest = inclusive

        def in_range(ts: str) -> bool:
            key = _ts_key(ts)
            low = key >= oldest if inclusive else key > oldest
            high = key <= latest if inclusive_latest else key < latest
            return low and high

        top_level = [
            m
            for m in reversed(self.messages_in(channel_id))
            if m.get("thread_ts") in (None, m["ts"]) and in_range(m["ts"])
        ]
        page, rest = top_level[:limit], top_level[limit:]
        next_cursor = ""
        if rest:
            next_cursor = base64.b64encode(f"next_ts:{page[-1]['ts']}".encode()).decode()
        return {
            "ok": True,
            "messages": [self._public_message(m, with_metadata=with_metadata) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        call = self._record("response_url", {})
        try:
            call.params = await self._read_params(request)
        except SlackApiFailure as failure:
            return await self._finish(call, 400, failure.body())
        target = self._response_urls.get(request.match_info["key"])
        if target is None:
            return await self._finish(call, 404, {"ok": False, "error": "expired_url"})
        target.uses += 1
        if target.uses > 5:
            return await self._finish(call, 404, {"ok": False, "error": "used_url"})
        params = call.params
        key = (target.channel_id, target.message_ts or "")
        if _truthy(params.get("delete_original")) and key in self.messages:
            del self.messages[key]
        elif _truthy(params.get("replace_original")) and key in self.messages:
            message = self.messages[key]
            message["text"] = params.get("text") or ""
            if params.get("blocks"):
                message["blocks"] = fill_ids(params["blocks"])
            else:
                message.pop("blocks", None)
        elif params.get("response_type") == "in_channel":
            message = self._bot_message(target.channel_id, params)
            self.messages[(target.channel_id, message["ts"])] = message
        else:
            ephemeral = {
                "channel": target.channel_id,
                "user": target.user_id,
                "ts": self._next_ts(),
                "text": params.get("text") or "",
            }
            if params.get("blocks"):
                ephemeral["blocks"] = fill_ids(params["blocks"])
            self.ephemerals.append(ephemeral)
        return await self._finish(call, 200, {"ok": True})
