"""The Slack stand-in, exercised through slack_sdk's real AsyncWebClient."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from testing.standin import SlackStandIn

pytestmark = pytest.mark.asyncio

TEACHER = "U0TEACHER"
DSL = "U0DSL"


def modal(title: str = "Record a concern", **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "concern",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "summary",
                "label": {"type": "plain_text", "text": "What happened?"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
            }
        ],
    }
    view.update(extra)
    return view


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as running:
        running.add_user(TEACHER, email="Teacher@School.example", name="Ms Teacher")
        running.add_user(DSL, email="dsl@school.example", name="Mr Lead")
        yield running


@pytest.fixture
def client(standin: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=standin.bot_token, base_url=standin.api_url, timeout=2)


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# --------------------------------------------------------------------------- auth


async def test_auth_test_and_token_checks(standin: SlackStandIn, client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["ok"] is True
    assert response["user_id"] == standin.bot_user_id
    assert response["team_id"] == "T0VIGIL"
    assert response["bot_id"] == "B0VIGIL"
    assert response["url"] == "https://vigil-demo.slack.com/"

    wrong = AsyncWebClient(token="xoxb-wrong", base_url=standin.api_url)
    assert (await slack_error(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=standin.api_url)
    assert (await slack_error(anonymous.auth_test())).response["error"] == "not_authed"
    app_token = AsyncWebClient(token=standin.app_token, base_url=standin.api_url)
    error = await slack_error(app_token.auth_test())
    assert error.response["error"] == "not_allowed_token_type"
    error = await slack_error(client.apps_connections_open(app_token=standin.bot_token))
    assert error.response["error"] == "not_allowed_token_type"

    error = await slack_error(client.api_call("chat.scheduleMessage", json={"channel": "C1"}))
    assert error.response["error"] == "unknown_method"

    methods = [(c.method, c.status, c.error) for c in standin.calls]
    assert methods[0] == ("auth.test", 200, None)
    assert ("chat.scheduleMessage", 200, "unknown_method") in methods
    assert standin.calls[0].token == standin.bot_token
    assert standin.calls[0].answered_at is not None
    assert standin.calls[0].answered_at >= standin.calls[0].at


async def test_form_bodies_are_decoded_and_token_param_accepted(standin: SlackStandIn) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]
    async with aiohttp.ClientSession() as session:
        form = {
            "token": standin.bot_token,
            "channel": TEACHER,
            "text": "hello",
            "blocks": json.dumps(blocks),
            "metadata": json.dumps({"event_type": "concern", "event_payload": {"id": "1"}}),
        }
        async with session.post(f"{standin.api_url}chat.postMessage", data=form) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            body = await response.json()
    assert body["ok"] is True
    call = standin.calls_to("chat.postMessage")[0]
    assert call.token == standin.bot_token
    assert "token" not in call.params
    assert call.params["blocks"][0]["text"]["text"] == "hello"
    assert call.params["metadata"] == {"event_type": "concern", "event_payload": {"id": "1"}}


# --------------------------------------------------------------------------- messages


async def test_post_message_to_user_and_history_with_metadata(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    metadata = {"event_type": "vigil_concern", "event_payload": {"concern_id": "c-1"}}
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "A new concern"}}]
    first = await client.chat_postMessage(
        channel=TEACHER, text="A new concern", blocks=blocks, metadata=metadata
    )
    second = await client.chat_postMessage(channel=TEACHER, text="Second")

    dm = standin.dm_channel_for(TEACHER)
    assert re.fullmatch(r"D[0-9A-F]{10}", dm)
    assert first["channel"] == dm
    assert first["message"]["user"] == standin.bot_user_id
    assert first["message"]["metadata"] == metadata
    assert re.fullmatch(r"\d{10}\.\d{6}", first["ts"])
    assert float(second["ts"]) > float(first["ts"])

    opened = await client.conversations_open(users=TEACHER)
    assert opened["channel"]["id"] == dm

    stored = standin.messages_for_user(TEACHER)
    assert [m["text"] for m in stored] == ["A new concern", "Second"]
    assert stored[0]["metadata"] == metadata
    assert stored[0]["blocks"][0]["block_id"]  # Slack fills in missing block ids
    assert standin.messages[(dm, first["ts"])] is stored[0]

    plain = await client.conversations_history(channel=dm)
    assert [m["ts"] for m in plain["messages"]] == [second["ts"], first["ts"]]
    assert all("metadata" not in m for m in plain["messages"])
    assert plain["has_more"] is False

    rich = await client.conversations_history(channel=dm, include_all_metadata=True)
    assert rich["messages"][1]["metadata"] == metadata
    assert rich["messages"][1]["type"] == "message"
    assert rich["messages"][1]["user"] == standin.bot_user_id

    page = await client.conversations_history(channel=dm, limit=1)
    assert page["has_more"] is True
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel=dm, limit=1, cursor=cursor)
    assert [m["ts"] for m in rest["messages"]] == [first["ts"]]

    newer = await client.conversations_history(channel=dm, oldest=first["ts"])
    assert [m["ts"] for m in newer["messages"]] == [second["ts"]]


async def test_post_message_errors(standin: SlackStandIn, client: AsyncWebClient) -> None:
    error = await slack_error(client.chat_postMessage(channel="U0NOBODY", text="hi"))
    assert error.response["error"] == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):
        error = await slack_error(client.chat_postMessage(channel=TEACHER))
    assert error.response["error"] == "no_text"
    error = await slack_error(
        client.chat_postMessage(
            channel=TEACHER,
            text="x",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
        )
    )
    assert error.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text/text" in error.response["response_metadata"]["messages"][0]
    channel_post = await client.chat_postMessage(channel="C0SAFEGUARD", text="to a channel")
    assert channel_post["channel"] == "C0SAFEGUARD"
    assert standin.messages_in("C0SAFEGUARD")[0]["text"] == "to a channel"


async def test_chat_update(standin: SlackStandIn, client: AsyncWebClient) -> None:
    metadata = {"event_type": "vigil_concern", "event_payload": {"concern_id": "c-1"}}
    posted = await client.chat_postMessage(channel=TEACHER, text="Pending", metadata=metadata)
    channel, ts = posted["channel"], posted["ts"]

    updated = await client.chat_update(
        channel=channel,
        ts=ts,
        text="Acknowledged",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Acknowledged"}}],
    )
    assert updated["ts"] == ts
    assert updated["text"] == "Acknowledged"
    stored = standin.messages[(channel, ts)]
    assert stored["text"] == "Acknowledged"
    assert stored["blocks"][0]["text"]["text"] == "Acknowledged"
    assert stored["edited"]["user"] == standin.bot_user_id
    assert stored["metadata"] == metadata  # kept when not given, like Slack

    error = await slack_error(client.chat_update(channel=channel, ts="1.000001", text="x"))
    assert error.response["error"] == "message_not_found"
    error = await slack_error(client.chat_update(channel=TEACHER, ts=ts, text="x"))
    assert error.response["error"] == "channel_not_found"
    theirs = standin.add_user_message(channel, TEACHER, "written by a person")
    error = await slack_error(client.chat_update(channel=channel, ts=theirs["ts"], text="x"))
    assert error.response["error"] == "cant_update_message"


async def test_post_ephemeral(standin: SlackStandIn, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(channel="C0GENERAL", user=TEACHER, text="Only you")
    assert re.fullmatch(r"\d+\.\d{6}", response["message_ts"])
    assert standin.ephemerals[0]["user"] == TEACHER
    assert standin.ephemerals[0]["text"] == "Only you"


# --------------------------------------------------------------------------- views


async def test_views_open_update_and_triggers(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    trigger = standin.register_trigger(TEACHER)
    assert re.fullmatch(r"\d+\.\d+\.[0-9a-f]+", trigger)
    opened = await client.views_open(
        trigger_id=trigger, view=modal(private_metadata="p1", notify_on_close=True)
    )
    view = opened["view"]
    assert re.fullmatch(r"V[A-Z0-9]{10}", view["id"])
    assert view["root_view_id"] == view["id"]
    assert view["callback_id"] == "concern"
    assert view["private_metadata"] == "p1"
    assert view["state"] == {"values": {}}
    assert view["team_id"] == standin.team_id
    assert view["notify_on_close"] is True
    assert standin.views[view["id"]]["hash"] == view["hash"]
    assert standin.view_users[view["id"]] == TEACHER

    error = await slack_error(client.views_open(trigger_id=trigger, view=modal()))
    assert error.response["error"] == "exchanged_trigger_id"
    error = await slack_error(client.views_open(trigger_id="", view=modal()))
    assert error.response["error"] == "invalid_trigger_id"
    homemade = await client.views_open(trigger_id="12345.98765.abcd2358fdea", view=modal())
    assert homemade["view"]["id"] != view["id"]

    standin.set_view_state(view["id"], {"summary": {"text": {"type": "plain_text_input"}}})
    updated = await client.views_update(
        view_id=view["id"], hash=view["hash"], view=modal(title="Saved", private_metadata="p2")
    )
    assert updated["view"]["id"] == view["id"]
    assert updated["view"]["hash"] != view["hash"]
    assert updated["view"]["title"]["text"] == "Saved"
    assert updated["view"]["private_metadata"] == "p2"
    assert "summary" in updated["view"]["state"]["values"]  # state survives an update
    assert standin.views[view["id"]]["title"]["text"] == "Saved"

    error = await slack_error(
        client.views_update(view_id=view["id"], hash=view["hash"], view=modal())
    )
    assert error.response["error"] == "hash_conflict"
    error = await slack_error(client.views_update(view_id="V0000000000", view=modal()))
    assert error.response["error"] == "not_found"


async def test_views_by_external_id_push_and_publish(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    opened = await client.views_open(
        trigger_id=standin.register_trigger(TEACHER), view=modal(external_id="concern-1")
    )
    updated = await client.views_update(external_id="concern-1", view=modal(title="Again"))
    assert updated["view"]["id"] == opened["view"]["id"]

    pushed = await client.views_push(
        trigger_id=standin.register_trigger(TEACHER, view_id=opened["view"]["id"]),
        view=modal(title="Are you sure?"),
    )
    assert pushed["view"]["previous_view_id"] == opened["view"]["id"]
    assert pushed["view"]["root_view_id"] == opened["view"]["id"]

    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    published = await client.views_publish(user_id=TEACHER, view=home)
    assert standin.home_views[TEACHER]["id"] == published["view"]["id"]
    again = await client.views_publish(user_id=TEACHER, view=home)
    assert again["view"]["id"] == published["view"]["id"]
    error = await slack_error(client.views_publish(user_id=TEACHER, view=modal()))
    assert error.response["error"] == "invalid_arguments"


async def test_modal_limits(standin: SlackStandIn, client: AsyncWebClient) -> None:
    too_long = modal(title="A title that is far too long for Slack")
    error = await slack_error(
        client.views_open(trigger_id=standin.register_trigger(TEACHER), view=too_long)
    )
    assert error.response["error"] == "invalid_arguments"
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]

    divider = {"type": "divider"}
    cases = {
        "/view/blocks]": modal(blocks=[divider] * 101),
        "/view/private_metadata]": modal(private_metadata="x" * 3001),
        "/view/submit/text]": modal(submit={"type": "plain_text", "text": "S" * 25}),
        "/view/close/text]": modal(close={"type": "plain_text", "text": "C" * 25}),
    }
    for pointer, view in cases.items():
        error = await slack_error(
            client.views_open(trigger_id=standin.register_trigger(TEACHER), view=view)
        )
        assert error.response["error"] == "invalid_arguments"
        assert any(m.endswith(pointer) for m in error.response["response_metadata"]["messages"])

    # A failed call does not use up the trigger, and the limits are inclusive.
    trigger = standin.register_trigger(TEACHER)
    await slack_error(client.views_open(trigger_id=trigger, view=too_long))
    fine = modal(title="T" * 24, blocks=[divider] * 100, private_metadata="x" * 3000)
    assert (await client.views_open(trigger_id=trigger, view=fine))["ok"] is True


async def test_expired_trigger() -> None:
    async with SlackStandIn(trigger_ttl=0.0) as standin:
        standin.add_user(TEACHER, email="t@school.example", name="T")
        client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
        trigger = standin.register_trigger(TEACHER)
        error = await slack_error(client.views_open(trigger_id=trigger, view=modal()))
        assert error.response["error"] == "expired_trigger_id"


# --------------------------------------------------------------------------- users


async def test_users_lookup_and_info(standin: SlackStandIn, client: AsyncWebClient) -> None:
    found = await client.users_lookupByEmail(email="teacher@SCHOOL.example")
    user = found["user"]
    assert user["id"] == TEACHER
    assert user["team_id"] == standin.team_id
    assert user["real_name"] == "Ms Teacher"
    assert user["deleted"] is False
    assert user["profile"]["email"] == "Teacher@School.example"
    assert user["profile"]["display_name"] == "Ms Teacher"

    error = await slack_error(client.users_lookupByEmail(email="nobody@school.example"))
    assert error.response["error"] == "users_not_found"

    info = await client.users_info(user=DSL)
    assert info["user"]["profile"]["email"] == "dsl@school.example"
    error = await slack_error(client.users_info(user="U0NOBODY"))
    assert error.response["error"] == "user_not_found"

    standin.add_user("U0LEFT", email="left@school.example", name="Left", deleted=True)
    gone = await client.users_lookupByEmail(email="left@school.example")
    assert gone["user"]["deleted"] is True


# --------------------------------------------------------------------------- faults


async def test_injected_429_reaches_client_with_retry_after(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    standin.inject_status("chat.postMessage", 429, retry_after=7)
    error = await slack_error(client.chat_postMessage(channel=TEACHER, text="hi"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    assert standin.messages_for_user(TEACHER) == []

    # The fault is consumed: the next call goes through.
    assert (await client.chat_postMessage(channel=TEACHER, text="hi"))["ok"] is True
    calls = standin.calls_to("chat.postMessage")
    assert [(c.status, c.fault) for c in calls] == [(429, "status"), (200, None)]
    assert len(standin.calls_to("chat.postMessage", ok_only=True)) == 1


async def test_injected_5xx(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.inject_status("chat.postMessage", 500)
    standin.inject_status("chat.postMessage", 503, body={"ok": False, "error": "down"})
    first = await slack_error(client.chat_postMessage(channel=TEACHER, text="hi"))
    second = await slack_error(client.chat_postMessage(channel=TEACHER, text="hi"))
    assert (first.response.status_code, first.response["error"]) == (500, "fatal_error")
    assert (second.response.status_code, second.response["error"]) == (503, "down")
    assert "Retry-After" not in first.response.headers


async def test_a_refused_app_is_refused_until_accepted_again(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    standin.refuse_app("missing_scope", methods=("chat.postMessage",), needed="chat:write")
    for _ in range(3):  # not a queued fault: every call, until accepted
        error = await slack_error(client.chat_postMessage(channel=TEACHER, text="hi"))
        assert (error.response.status_code, error.response["error"]) == (200, "missing_scope")
        assert error.response["needed"] == "chat:write"
    assert (await client.auth_test())["ok"] is True  # other methods still work
    standin.refuse_app("token_revoked")
    assert (await slack_error(client.auth_test())).response["error"] == "token_revoked"
    standin.accept_app()
    assert (await client.chat_postMessage(channel=TEACHER, text="hi"))["ok"] is True


async def test_injected_error_and_wildcard(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.inject_error("users.lookupByEmail", "fatal_error")
    error = await slack_error(client.users_lookupByEmail(email="dsl@school.example"))
    assert (error.response.status_code, error.response["error"]) == (200, "fatal_error")
    standin.inject_error("*", "team_added_to_org", count=2)
    for _ in range(2):
        error = await slack_error(client.auth_test())
        assert error.response["error"] == "team_added_to_org"
    standin.inject_error("auth.test", "fatal_error")
    standin.clear_faults()
    assert (await client.auth_test())["ok"] is True


async def test_hang_makes_the_client_time_out(standin: SlackStandIn) -> None:
    client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url, timeout=0.5)
    standin.inject_hang("chat.postMessage", seconds=2)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await client.chat_postMessage(channel=TEACHER, text="hi")
    assert time.monotonic() - started < 1.5
    call = standin.calls_to("chat.postMessage")[0]
    assert call.fault == "hang"
    assert call.answered_at is None
    # Stopping the stand-in releases the held request instead of waiting 2 s.
    await standin.stop()
    assert call.answered_at is not None
    assert time.monotonic() - started < 1.8


async def test_reset_causes_a_connection_error(standin: SlackStandIn) -> None:
    no_retry = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url, retry_handlers=[])
    standin.inject_reset("chat.postMessage")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await no_retry.chat_postMessage(channel=TEACHER, text="hi")
    assert standin.calls_to("chat.postMessage")[0].status == 0
    assert standin.messages_for_user(TEACHER) == []

    # slack_sdk's default retry handlers retry one dropped connection.
    default = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    standin.inject_reset("chat.postMessage")
    assert (await default.chat_postMessage(channel=TEACHER, text="hi"))["ok"] is True
    assert [c.fault for c in standin.calls_to("chat.postMessage")] == ["reset", "reset", None]


async def test_rate_limit(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.rate_limit("chat.postMessage", per_second=2, retry_after=3)
    results = await asyncio.gather(
        *(client.chat_postMessage(channel=TEACHER, text=str(i)) for i in range(4)),
        return_exceptions=True,
    )
    limited = [r for r in results if isinstance(r, SlackApiError)]
    assert len(limited) == 2
    assert all(e.response.status_code == 429 for e in limited)
    assert all(e.response.headers["Retry-After"] == "3" for e in limited)
    assert len(standin.messages_for_user(TEACHER)) == 2
    assert (await client.auth_test())["ok"] is True  # other methods are not limited


async def test_wait_for_calls(standin: SlackStandIn, client: AsyncWebClient) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=TEACHER, text="one")
        await client.chat_postMessage(channel=DSL, text="two")

    task = asyncio.create_task(post_later())
    calls = await standin.wait_for_calls("chat.postMessage", 2, timeout=2)
    assert [c.params["text"] for c in calls] == ["one", "two"]
    assert all(c.ok for c in calls)
    await task

    with pytest.raises(TimeoutError) as caught:
        await standin.wait_for_calls("views.open", 1, timeout=0.1)
    message = str(caught.value)
    assert "views.open" in message
    assert "chat.postMessage (200 ok)" in message
    assert "one" not in message  # bodies are never echoed

    standin.inject_error("views.open", "invalid_arguments")
    await slack_error(client.views_open(trigger_id="1.2.abc", view=modal()))
    assert len(await standin.wait_for_calls("views.open", 1, ok_only=False, timeout=1)) == 1
    standin.clear_calls()
    assert standin.calls == []


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_handler_acks_and_reconnects(standin: SlackStandIn) -> None:
    web_client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    app = AsyncApp(client=web_client, signing_secret="not-used-in-socket-mode")
    received: list[dict[str, Any]] = []

    @app.command("/concern")
    async def concern(ack: Any, command: dict[str, Any]) -> None:
        received.append(command)
        await ack(f"Got it: {command['text']}")

    handler = AsyncSocketModeHandler(app, standin.app_token, ping_interval=0.5)
    try:
        await handler.connect_async()
        await standin.wait_socket_connected(timeout=2)
        assert standin.socket_connection_count == 1
        connect_call = standin.calls_to("apps.connections.open")[0]
        assert connect_call.token == standin.app_token

        command = {"command": "/concern", "text": "first", "user_id": TEACHER, "team_id": "T0VIGIL"}
        ack = await standin.socket_send(
            "slash_commands", command, accepts_response_payload=True, timeout=3
        )
        assert ack == {"text": "Got it: first"}
        assert received[0]["text"] == "first"

        await standin.drop_socket_connections()
        ack = await standin.socket_send(
            "slash_commands",
            {**command, "text": "second"},
            accepts_response_payload=True,
            timeout=3,
        )
        assert ack == {"text": "Got it: second"}
        assert len(standin.calls_to("apps.connections.open", ok_only=True)) == 2
        assert standin.socket_connection_count == 1

        # Slack's graceful {"type": "disconnect"}: the client reconnects, then closes the old one.
        await standin.drop_socket_connections(graceful=True, timeout=3)
        await standin.wait_socket_connected(timeout=3)
        ack = await standin.socket_send(
            "slash_commands", {**command, "text": "third"}, accepts_response_payload=True, timeout=3
        )
        assert ack == {"text": "Got it: third"}
        assert len(standin.calls_to("apps.connections.open", ok_only=True)) == 3
    finally:
        await handler.close_async()


async def test_socket_send_times_out_without_a_client(standin: SlackStandIn) -> None:
    with pytest.raises(TimeoutError, match="Socket Mode"):
        await standin.socket_send("events_api", {"event": {}}, timeout=0.1)
