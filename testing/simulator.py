"""Plays Slack's side of the conversation: correctly signed requests to the app.

:class:`SlackSimulator` sends what Slack would send to Vigil's request URL
(slash commands, interactive payloads, Events API callbacks), signed with the
app's signing secret, and reads state from a :class:`~testing.standin.SlackStandIn`
so payloads carry real ids: views opened through ``views.open``, messages
posted through ``chat.postMessage``, trigger ids and response URLs.

With ``app_url=None`` the same payloads travel over the stand-in's Socket
Mode connection instead of HTTP.

Payload shapes follow Slack's documentation and the payloads Bolt's own tests
use (``tests/scenario_tests_async`` in slackapi/bolt-python).
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from testing.standin import SlackStandIn
from testing.view_state import build_state_values, find_element

#: The legacy verification token Slack puts in every payload (Bolt ignores it).
VERIFICATION_TOKEN = "standin-verification-token"

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass
class SlackResponse:
    """What the app answered."""

    status: int
    body: str
    json: dict[str, Any] | None
    elapsed: float
    headers: Mapping[str, str]


def _action_ts() -> str:
    return f"{time.time():.6f}"


class SlackSimulator:
    """Sends Slack-shaped, correctly signed requests to the app under test.

    ``app_url`` is the app's full Slack endpoint, e.g.
    ``"http://127.0.0.1:3000/slack/events"``; None sends the same payloads as
    Socket Mode envelopes through ``standin`` instead.
    """

    def __init__(
        self,
        *,
        app_url: str | None,
        signing_secret: str,
        standin: SlackStandIn,
        team_id: str | None = None,
        team_domain: str = "vigil-demo",
        api_app_id: str = "A0VIGIL",
        session: aiohttp.ClientSession | None = None,
        enterprise_id: str | None = None,
        org_wide: bool = False,
    ) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.standin = standin
        self.team_id = team_id or standin.team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        # A team of an Enterprise Grid org (`enterprise_id`), the app installed org-wide
        # (`org_wide`) or in this team alone.
        self.enterprise_id = enterprise_id
        self.org_wide = org_wide
        self._verifier = SignatureVerifier(signing_secret)
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        """Close the HTTP session if this simulator created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> SlackSimulator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ signing / transport

    def sign(self, body: bytes, timestamp: int) -> str:
        """Slack's ``X-Slack-Signature`` (``v0=...``) for ``body`` at ``timestamp``."""
        return self._verifier.generate_signature(timestamp=str(timestamp), body=body)

    async def send_raw(
        self,
        body: bytes,
        *,
        content_type: str,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackResponse:
        """POST ``body`` to the app as Slack would.

        ``timestamp`` defaults to now; ``signature`` defaults to the correct one
        for ``body`` and ``timestamp``, and ``""`` leaves the header out (for
        negative tests). ``headers`` are added last and override the others.
        """
        if self.app_url is None:
            raise RuntimeError("send_raw needs an app_url (HTTP mode)")
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = self.sign(body, timestamp) if signature is None else signature
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if signature:
            all_headers["X-Slack-Signature"] = signature
        all_headers.update(headers or {})
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.monotonic()
        async with self._session.post(self.app_url, data=body, headers=all_headers) as response:
            text = await response.text()
            parsed: dict[str, Any] | None = None
            if text and response.content_type == JSON:
                try:
                    loaded = json.loads(text)
                    parsed = loaded if isinstance(loaded, dict) else None
                except ValueError:
                    parsed = None
            return SlackResponse(
                status=response.status,
                body=text,
                json=parsed,
                elapsed=time.monotonic() - started,
                headers=response.headers,
            )

    async def _deliver(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
    ) -> SlackResponse:
        if self.app_url is None:
            started = time.monotonic()
            ack = await self.standin.socket_send(
                envelope_type, payload, accepts_response_payload=envelope_type != "events_api"
            )
            return SlackResponse(
                status=200,
                body=json.dumps(ack) if ack is not None else "",
                json=ack,
                elapsed=time.monotonic() - started,
                headers={},
            )
        if envelope_type == "slash_commands":
            body = urlencode(payload).encode()
            return await self.send_raw(body, content_type=FORM, headers=headers)
        if envelope_type == "interactive":
            body = urlencode({"payload": json.dumps(payload)}).encode()
            return await self.send_raw(body, content_type=FORM, headers=headers)
        return await self.send_raw(json.dumps(payload).encode(), content_type=JSON, headers=headers)

    # ------------------------------------------------------------------ payload parts

    def _user(self, user_id: str) -> dict[str, Any]:
        known = self.standin.users.get(user_id)
        name = known["name"] if known else user_id.lower()
        team_id = known["team_id"] if known else self.team_id
        return {"id": user_id, "username": name, "name": name, "team_id": team_id}

    def _team(self) -> dict[str, Any]:
        team = {"id": self.team_id, "domain": self.team_domain}
        if self.enterprise_id:
            team["enterprise_id"] = self.enterprise_id
        return team

    def _interactive(self, kind: str, user_id: str, **fields: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": kind,
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
        }
        payload.update(fields)
        payload.setdefault("is_enterprise_install", self.org_wide)
        payload.setdefault("enterprise", {"id": self.enterprise_id} if self.enterprise_id else None)
        return payload

    def _current_view(self, view: dict[str, Any]) -> dict[str, Any]:
        """The stand-in's stored copy of ``view`` (falls back to ``view`` itself)."""
        stored = self.standin.views.get(str(view.get("id")))
        return copy.deepcopy(stored if stored is not None else view)

    def _current_message(self, message: dict[str, Any], channel_id: str) -> dict[str, Any]:
        stored = self.standin.messages.get((channel_id, str(message.get("ts"))))
        current = copy.deepcopy(stored if stored is not None else message)
        current.pop("channel", None)
        return current

    def _channel_name(self, channel_id: str) -> str:
        if channel_id.startswith("D"):
            return "directmessage"
        if channel_id == "C0GENERAL":
            return "general"
        return channel_id.lower()

    # ------------------------------------------------------------------ what users do

    async def slash_command(
        self,
        user_id: str,
        text: str = "",
        *,
        command: str = "/concern",
        channel_id: str = "C0GENERAL",
    ) -> SlackResponse:
        """The user types ``command text`` in ``channel_id``."""
        payload = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user_id,
            "user_name": self._user(user_id)["name"],
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "true" if self.org_wide else "false",
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
            "response_url": self.standin.register_response_url(
                channel_id=channel_id, user_id=user_id
            ),
            "trigger_id": self.standin.register_trigger(user_id),
        }
        return await self._deliver("slash_commands", payload)

    async def block_suggestion(
        self, user_id: str, *, view: dict[str, Any], action_id: str, block_id: str, value: str
    ) -> SlackResponse:
        """The user types ``value`` into an external select in ``view``."""
        current = self._current_view(view)
        payload = self._interactive(
            "block_suggestion",
            user_id,
            container={"type": "view", "view_id": current["id"]},
            action_id=action_id,
            block_id=block_id,
            value=value,
            view=current,
        )
        return await self._deliver("interactive", payload)

    async def view_submission(
        self, user_id: str, *, view: dict[str, Any], values: dict[str, object]
    ) -> SlackResponse:
        """The user fills in ``values`` (block_id -> value) and presses Submit.

        The stand-in's view then holds that state, and a ``response_action``
        in the app's answer ("update"/"push") is applied to the stand-in.
        """
        current = self._current_view(view)
        state = build_state_values(current, values)
        current["state"] = {"values": state}
        if current["id"] in self.standin.views:
            self.standin.set_view_state(current["id"], state)
        payload = self._interactive(
            "view_submission",
            user_id,
            trigger_id=self.standin.register_trigger(user_id, view_id=current.get("id")),
            view=current,
            response_urls=[],
        )
        response = await self._deliver("interactive", payload)
        if response.status == 200:
            self.standin.apply_view_response(current["id"], response.json)
        return response

    async def view_closed(self, user_id: str, *, view: dict[str, Any]) -> SlackResponse:
        """The user closes ``view`` (Slack only tells apps that set notify_on_close)."""
        current = self._current_view(view)
        if not current.get("notify_on_close", False):
            raise ValueError(
                "Slack sends view_closed only for views opened with notify_on_close=true"
            )
        payload = self._interactive("view_closed", user_id, view=current, is_cleared=False)
        return await self._deliver("interactive", payload)

    async def block_actions(
        self,
        user_id: str,
        *,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        message: dict[str, Any] | None = None,
        channel_id: str | None = None,
        view: dict[str, Any] | None = None,
        action_type: str = "button",
        extra_action: dict[str, Any] | None = None,
    ) -> SlackResponse:
        """The user acts on an element of a message (needs ``channel_id``) or a view.

        ``block_id`` defaults to the block holding ``action_id``.
        """
        fields: dict[str, Any]
        if view is not None:
            current_view = self._current_view(view)
            blocks = current_view.get("blocks")
            fields = {
                "container": {"type": "view", "view_id": current_view["id"]},
                "trigger_id": self.standin.register_trigger(user_id, view_id=current_view["id"]),
                "view": current_view,
            }
        elif message is not None:
            if channel_id is None:
                raise ValueError("block_actions on a message needs channel_id")
            current_message = self._current_message(message, channel_id)
            blocks = current_message.get("blocks")
            fields = {
                "container": {
                    "type": "message",
                    "message_ts": current_message["ts"],
                    "channel_id": channel_id,
                    "is_ephemeral": False,
                },
                "trigger_id": self.standin.register_trigger(user_id),
                "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
                "message": current_message,
                "state": {"values": {}},
                "response_url": self.standin.register_response_url(
                    channel_id=channel_id, user_id=user_id, message_ts=current_message["ts"]
                ),
            }
        else:
            raise ValueError("block_actions needs a message (with channel_id) or a view")
        if block_id is None:
            found = find_element(blocks, action_id)
            if found is None:
                raise ValueError(f"no element with action_id {action_id!r}; pass block_id")
            block_id = found[0].get("block_id")
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": action_type,
            "action_ts": _action_ts(),
        }
        if value is not None:
            action["value"] = value
        action.update(extra_action or {})
        payload = self._interactive("block_actions", user_id, actions=[action], **fields)
        return await self._deliver("interactive", payload)

    async def click_button(
        self, user_id: str, message: dict[str, Any], action_id: str, *, channel_id: str
    ) -> SlackResponse:
        """The user clicks the button ``action_id`` in ``message`` (as stored in the stand-in)."""
        current = self._current_message(message, channel_id)
        found = find_element(current.get("blocks"), action_id)
        if found is None or found[1].get("type") != "button":
            raise ValueError(f"message {current.get('ts')} has no button {action_id!r}")
        block, button = found
        extra: dict[str, Any] = {"text": copy.deepcopy(button.get("text"))}
        if "style" in button:
            extra["style"] = button["style"]
        return await self.block_actions(
            user_id,
            action_id=action_id,
            value=button.get("value"),
            block_id=block.get("block_id"),
            message=current,
            channel_id=channel_id,
            extra_action=extra,
        )

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> SlackResponse:
        """Deliver an Events API ``event_callback`` wrapping ``event``.

        ``retry_num`` adds Slack's ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``.
        """
        event = copy.deepcopy(event)
        event.setdefault("event_ts", _action_ts())
        alphabet = string.ascii_uppercase + string.digits
        payload = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": self.enterprise_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + "".join(secrets.choice(alphabet) for _ in range(10)),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": None if self.org_wide else self.team_id,
                    "user_id": self.standin.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": self.org_wide,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }
        headers = None
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self._deliver("events_api", payload, headers=headers)
