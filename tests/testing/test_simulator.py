"""The Slack simulator, driving a tiny real Bolt app served by aiohttp."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from testing.simulator import SlackSimulator
from testing.standin import SlackStandIn
from testing.view_state import build_state_values

pytestmark = pytest.mark.asyncio

SECRET = "simulator-signing-secret"
TEACHER = "U0TEACHER"


def text(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value}


def option(label: str, value: str) -> dict[str, Any]:
    return {"text": text(label), "value": value}


def input_block(block_id: str, element: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": text(block_id),
        "element": {"action_id": "a", **element},
        **extra,
    }


KITCHEN_SINK = {
    "type": "modal",
    "callback_id": "sink",
    "title": text("Every element"),
    "submit": text("Save"),
    "notify_on_close": True,
    "blocks": [
        input_block("text", {"type": "plain_text_input"}),
        input_block("pupil", {"type": "external_select", "min_query_length": 0}),
        input_block("pupils", {"type": "multi_external_select"}),
        input_block(
            "category",
            {
                "type": "static_select",
                "option_groups": [
                    {"label": text("Harm"), "options": [option("Physical", "physical")]},
                    {"label": text("Other"), "options": [option("Online", "online")]},
                ],
            },
        ),
        input_block(
            "tags",
            {
                "type": "multi_static_select",
                "options": [option("Home", "home"), option("School", "school")],
            },
        ),
        input_block("staff", {"type": "users_select"}),
        input_block("watchers", {"type": "multi_users_select"}),
        input_block(
            "urgency",
            {"type": "radio_buttons", "options": [option("Now", "now"), option("Later", "later")]},
        ),
        input_block(
            "flags",
            {"type": "checkboxes", "options": [option("Police", "police"), option("LA", "la")]},
        ),
        input_block("when", {"type": "datetimepicker"}),
        input_block("day", {"type": "datepicker"}),
        input_block("time", {"type": "timepicker"}),
        input_block("untouched_text", {"type": "plain_text_input"}, optional=True),
        input_block("untouched_select", {"type": "external_select"}, optional=True),
        input_block(
            "untouched_multi",
            {"type": "multi_static_select", "options": [option("A", "a")]},
            optional=True,
        ),
        input_block(
            "prefilled",
            {
                "type": "static_select",
                "options": [option("A", "a")],
                "initial_option": option("A", "a"),
            },
            optional=True,
        ),
        {"type": "section", "text": {"type": "mrkdwn", "text": "Not an input"}},
    ],
}


@dataclass
class Seen:
    """What the Bolt app's listeners received."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)


def build_app(standin: SlackStandIn, seen: Seen) -> AsyncApp:
    client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/concern")
    async def concern(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.commands.append(body)
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=KITCHEN_SINK)

    @app.view("sink")
    async def submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        seen.submissions.append(body)
        if view["state"]["values"]["text"]["a"]["value"] == "update me":
            await ack(response_action="update", view={**KITCHEN_SINK, "title": text("Thanks")})
        else:
            await ack()

    @app.view_closed("sink")
    async def closed(ack: Any, body: dict[str, Any]) -> None:
        seen.closed.append(body)
        await ack()

    @app.options("a")
    async def suggest(ack: Any, body: dict[str, Any]) -> None:
        seen.suggestions.append(body)
        await ack(options=[option(f"{body['value']} Smith", "pupil-1")])

    @app.action("acknowledge")
    async def acknowledge(ack: Any, body: dict[str, Any], respond: Any) -> None:
        seen.actions.append(body)
        await ack()
        if "response_url" in body:  # only message actions have one
            await respond(replace_original=True, text="Acknowledged")

    @app.event("app_mention")
    async def mention(body: dict[str, Any], request: Any, say: Any) -> None:
        retry = request.headers.get("x-slack-retry-num", [None])[0]
        seen.events.append((body, retry))
        await say("Noted")  # lets the test wait for chat.postMessage instead of polling

    return app


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as running:
        running.add_user(TEACHER, email="teacher@school.example", name="Ms Teacher")
        yield running


@pytest_asyncio.fixture
async def rig(standin: SlackStandIn) -> AsyncIterator[tuple[SlackSimulator, Seen]]:
    seen = Seen()
    runner = web.AppRunner(build_app(standin, seen).web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    simulator = SlackSimulator(
        app_url=f"http://127.0.0.1:{port}/slack/events", signing_secret=SECRET, standin=standin
    )
    try:
        yield simulator, seen
    finally:
        await simulator.close()
        await runner.cleanup()


async def open_sink(standin: SlackStandIn, simulator: SlackSimulator) -> dict[str, Any]:
    response = await simulator.slash_command(TEACHER, "about a pupil")
    assert response.status == 200
    (call,) = await standin.wait_for_calls("views.open", 1, timeout=2)
    assert call.response is not None
    return call.response["view"]


# --------------------------------------------------------------------------- signing


async def test_slash_command_is_signed_and_shaped_like_slack(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    view = await open_sink(standin, simulator)
    body = seen.commands[0]
    assert body["command"] == "/concern"
    assert body["text"] == "about a pupil"
    assert body["user_id"] == TEACHER
    assert body["user_name"] == "teacher"
    assert body["team_id"] == standin.team_id
    assert body["team_domain"] == "vigil-demo"
    assert body["channel_id"] == "C0GENERAL"
    assert body["channel_name"] == "general"
    assert body["api_app_id"] == "A0VIGIL"
    assert body["is_enterprise_install"] == "false"
    assert body["response_url"].startswith(standin.base_url)
    assert standin.view_users[view["id"]] == TEACHER  # the trigger came from register_trigger


async def test_bad_signatures_are_rejected(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    body = b"command=%2Fconcern&text=hi&user_id=U0TEACHER&team_id=T0VIGIL"
    form = "application/x-www-form-urlencoded"
    now = int(time.time())
    wrong = await simulator.send_raw(body, content_type=form, signature="v0=" + "0" * 64)
    missing = await simulator.send_raw(body, content_type=form, signature="")
    stale_ts = now - 10 * 60
    stale = await simulator.send_raw(
        body, content_type=form, timestamp=stale_ts, signature=simulator.sign(body, stale_ts)
    )
    assert (wrong.status, missing.status, stale.status) == (401, 401, 401)
    assert seen.commands == []
    assert simulator.sign(body, now).startswith("v0=")


# --------------------------------------------------------------------------- views


async def test_view_submission_state_for_every_element_type(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    view = await open_sink(standin, simulator)
    response = await simulator.view_submission(
        TEACHER,
        view=view,
        values={
            "text": "He said he was hit",
            "pupil": {"text": "Alex Smith", "value": "pupil-1"},
            "pupils": ["pupil-2", {"text": "Sam Jones", "value": "pupil-3"}],
            "category": "online",
            "tags": ["home", "school"],
            "staff": "U0DSL",
            "watchers": ["U0DSL", "U0HEAD"],
            "urgency": "now",
            "flags": ["la"],
            "when": 1732370000,
            "day": dt.date(2024, 11, 23),
            "time": "09:15",
        },
    )
    assert response.status == 200
    assert response.body == ""

    body = seen.submissions[0]
    assert body["type"] == "view_submission"
    assert body["user"] == {
        "id": TEACHER,
        "username": "teacher",
        "name": "teacher",
        "team_id": standin.team_id,
    }
    assert body["team"] == {"id": standin.team_id, "domain": "vigil-demo"}
    assert body["trigger_id"]
    submitted = body["view"]
    stored = standin.views[view["id"]]
    for key in ("id", "hash", "callback_id", "root_view_id", "app_id", "team_id", "bot_id"):
        assert submitted[key] == stored[key]
    values = submitted["state"]["values"]
    assert values == {
        "text": {"a": {"type": "plain_text_input", "value": "He said he was hit"}},
        "pupil": {
            "a": {
                "type": "external_select",
                "selected_option": option("Alex Smith", "pupil-1"),
            }
        },
        "pupils": {
            "a": {
                "type": "multi_external_select",
                "selected_options": [option("pupil-2", "pupil-2"), option("Sam Jones", "pupil-3")],
            }
        },
        "category": {"a": {"type": "static_select", "selected_option": option("Online", "online")}},
        "tags": {
            "a": {
                "type": "multi_static_select",
                "selected_options": [option("Home", "home"), option("School", "school")],
            }
        },
        "staff": {"a": {"type": "users_select", "selected_user": "U0DSL"}},
        "watchers": {"a": {"type": "multi_users_select", "selected_users": ["U0DSL", "U0HEAD"]}},
        "urgency": {"a": {"type": "radio_buttons", "selected_option": option("Now", "now")}},
        "flags": {"a": {"type": "checkboxes", "selected_options": [option("LA", "la")]}},
        "when": {"a": {"type": "datetimepicker", "selected_date_time": 1732370000}},
        "day": {"a": {"type": "datepicker", "selected_date": "2024-11-23"}},
        "time": {"a": {"type": "timepicker", "selected_time": "09:15"}},
        "untouched_text": {"a": {"type": "plain_text_input", "value": None}},
        "untouched_select": {"a": {"type": "external_select", "selected_option": None}},
        "untouched_multi": {"a": {"type": "multi_static_select", "selected_options": []}},
        "prefilled": {"a": {"type": "static_select", "selected_option": option("A", "a")}},
    }
    assert stored["state"]["values"] == values  # Slack now holds what the user entered


async def test_response_action_update_is_applied_to_the_standin(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, _ = rig
    view = await open_sink(standin, simulator)
    old_hash = standin.views[view["id"]]["hash"]
    response = await simulator.view_submission(TEACHER, view=view, values={"text": "update me"})
    assert response.json is not None
    assert response.json["response_action"] == "update"
    assert standin.views[view["id"]]["title"]["text"] == "Thanks"
    assert standin.views[view["id"]]["hash"] != old_hash


async def test_block_suggestion_and_view_closed(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    view = await open_sink(standin, simulator)
    response = await simulator.block_suggestion(
        TEACHER, view=view, action_id="a", block_id="pupil", value="Ale"
    )
    assert response.status == 200
    assert response.json == {"options": [option("Ale Smith", "pupil-1")]}
    body = seen.suggestions[0]
    assert body["type"] == "block_suggestion"
    assert (body["action_id"], body["block_id"], body["value"]) == ("a", "pupil", "Ale")
    assert body["container"] == {"type": "view", "view_id": view["id"]}
    assert body["view"]["id"] == view["id"]

    closed = await simulator.view_closed(TEACHER, view=view)
    assert closed.status == 200
    assert seen.closed[0]["type"] == "view_closed"
    assert seen.closed[0]["is_cleared"] is False


async def test_view_closed_needs_notify_on_close(standin: SlackStandIn) -> None:
    client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    quiet = {**KITCHEN_SINK, "notify_on_close": False}
    opened = await client.views_open(trigger_id=standin.register_trigger(TEACHER), view=quiet)
    simulator = SlackSimulator(
        app_url="http://127.0.0.1:9/unused", signing_secret=SECRET, standin=standin
    )
    with pytest.raises(ValueError, match="notify_on_close"):
        await simulator.view_closed(TEACHER, view=opened["view"])


# --------------------------------------------------------------------------- messages / events


async def test_click_button_in_a_dm_and_respond(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    posted = await client.chat_postMessage(
        channel=TEACHER,
        text="New concern",
        metadata={"event_type": "vigil_concern", "event_payload": {"concern_id": "c-9"}},
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "New concern"}},
            {
                "type": "actions",
                "block_id": "decide",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "acknowledge",
                        "text": text("Acknowledge"),
                        "value": "c-9",
                        "style": "primary",
                    }
                ],
            },
        ],
    )
    channel = posted["channel"]
    response = await simulator.click_button(
        TEACHER, posted["message"], "acknowledge", channel_id=channel
    )
    assert response.status == 200

    body = seen.actions[0]
    assert body["type"] == "block_actions"
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": channel,
        "is_ephemeral": False,
    }
    assert body["channel"] == {"id": channel, "name": "directmessage"}
    assert body["message"]["ts"] == posted["ts"]
    assert body["message"]["metadata"]["event_payload"] == {"concern_id": "c-9"}
    action = body["actions"][0]
    assert action["action_id"] == "acknowledge"
    assert action["block_id"] == "decide"
    assert action["value"] == "c-9"
    assert action["type"] == "button"
    assert action["text"] == text("Acknowledge")
    assert action["style"] == "primary"
    assert body["trigger_id"]
    assert body["response_url"].startswith(standin.base_url)

    await standin.wait_for_calls("response_url", 1, timeout=2)
    assert standin.messages[(channel, posted["ts"])]["text"] == "Acknowledged"


async def test_block_actions_in_a_view_finds_the_block(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    view = {
        "type": "home",
        "blocks": [
            {
                "type": "actions",
                "elements": [{"type": "button", "action_id": "acknowledge", "text": text("Ack")}],
            }
        ],
    }
    published = await client.views_publish(user_id=TEACHER, view=view)
    generated_block_id = published["view"]["blocks"][0]["block_id"]
    response = await simulator.block_actions(
        TEACHER, action_id="acknowledge", view=published["view"]
    )
    assert response.status == 200
    body = seen.actions[0]
    assert body["container"] == {"type": "view", "view_id": published["view"]["id"]}
    assert body["actions"][0]["block_id"] == generated_block_id
    assert "value" not in body["actions"][0]


async def test_events_with_retry_headers(
    standin: SlackStandIn, rig: tuple[SlackSimulator, Seen]
) -> None:
    simulator, seen = rig
    event = {"type": "app_mention", "user": TEACHER, "text": "<@U0VIGILBOT> hi", "channel": "C1"}
    first = await simulator.event(event, event_id="Ev0000000001")
    retried = await simulator.event(event, event_id="Ev0000000001", retry_num=1)
    assert (first.status, retried.status) == (200, 200)
    await standin.wait_for_calls("chat.postMessage", 2, timeout=2)  # listeners run after the ack
    (body, retry), (_, second_retry) = seen.events
    assert body["type"] == "event_callback"
    assert body["event_id"] == "Ev0000000001"
    assert body["team_id"] == standin.team_id
    assert body["authorizations"][0]["user_id"] == standin.bot_user_id
    assert body["event"]["text"] == "<@U0VIGILBOT> hi"
    assert (retry, second_retry) == (None, "1")


# --------------------------------------------------------------------------- helpers, Socket Mode


async def test_build_state_values_rejects_unknown_blocks_and_options() -> None:
    with pytest.raises(KeyError, match="nope"):
        build_state_values(KITCHEN_SINK, {"nope": "x"})
    with pytest.raises(ValueError, match="no option"):
        build_state_values(KITCHEN_SINK, {"category": "not-an-option"})
    state = build_state_values(KITCHEN_SINK, {"when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)})
    assert state["when"]["a"]["selected_date_time"] == 1704067200


async def test_simulator_over_socket_mode(standin: SlackStandIn) -> None:
    seen = Seen()
    app = build_app(standin, seen)
    handler = AsyncSocketModeHandler(app, standin.app_token, ping_interval=0.5)
    await handler.connect_async()
    try:
        simulator = SlackSimulator(app_url=None, signing_secret=SECRET, standin=standin)
        view = await open_sink(standin, simulator)
        response = await simulator.view_submission(TEACHER, view=view, values={"text": "update me"})
        assert response.json is not None
        assert response.json["response_action"] == "update"
        assert seen.commands[0]["text"] == "about a pupil"
        assert standin.views[view["id"]]["title"]["text"] == "Thanks"
    finally:
        await handler.close_async()
