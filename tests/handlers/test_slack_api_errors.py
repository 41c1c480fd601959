"""Slack refusing a call a listener makes (an expired trigger, an odd channel in a
payload) is answered cleanly: no 500, and the log names Slack's error code, not the
payload or Slack's answer."""

from __future__ import annotations

from structlog.testing import capture_logs

from testing.harness import Harness
from tests.support.school import DEPUTY, DSL, TEACHER
from tests.support.slack import file_concern


def logged_by_code_only(logs: list[dict[str, object]]) -> None:
    for entry in logs:
        assert "exc_info" not in entry and entry.get("log_level") != "error", entry
        text = str(entry)  # not the exception's text, which quotes Slack's whole answer
        assert "The server responded with" not in text and "'ok': False" not in text


async def test_a_trigger_slack_refuses_gives_no_500(school: Harness) -> None:
    school.standin.inject_error("views.open", "invalid_trigger_id")
    with capture_logs() as logs:
        response = await school.slack.slash_command(TEACHER)
    assert response.status == 200
    assert {"event": "concern.modal_open_failed", "error": "invalid_trigger_id"}.items() <= next(
        e for e in logs if e["event"] == "concern.modal_open_failed"
    ).items()
    logged_by_code_only(logs)
    # The next /concern opens the form as ever.
    assert (await school.slack.slash_command(TEACHER)).status == 200
    assert school.standin.calls_to("views.open", ok_only=True)


async def test_an_ephemeral_slack_refuses_gives_no_500(school: Harness) -> None:
    await file_concern(school)
    channel = school.standin.dm_channel_for(DSL)
    (dm,) = school.standin.messages_in(channel)
    school.standin.inject_error("chat.postEphemeral", "channel_not_found")
    with capture_logs() as logs:
        response = await school.slack.click_button(
            DEPUTY, dm, "alert_mark_read", channel_id=channel
        )
    assert response.status == 200
    assert any(
        e["event"] == "slack.ephemeral_failed" and e["error"] == "channel_not_found" for e in logs
    )
    logged_by_code_only(logs)


async def test_any_other_call_slack_refuses_in_a_listener_gives_no_500(school: Harness) -> None:
    # The help text needs no Slack call; the App Home does (views.publish).
    school.standin.inject_error("views.publish", "invalid_arguments", count=5)
    with capture_logs() as logs:
        response = await school.slack.event(
            {"type": "app_home_opened", "user": TEACHER, "channel": "D0HOME", "tab": "home"}
        )
    assert response.status == 200
    assert any(
        e["event"] == "slack.api_call_refused" and e["error"] == "invalid_arguments" for e in logs
    )
    logged_by_code_only(logs)
