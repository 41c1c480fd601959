"""Hostile input at the Slack endpoint: refused with the right status, nothing stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse

import pytest
from sqlalchemy import func, select

from store.models import Incident, LoginToken, OutboxMessage, ReadReceipt
from testing.harness import Harness
from tests.support.records import pupil_at_another_school
from tests.support.school import DSL, PUPIL_4B, TEACHER


async def stored(harness: Harness) -> tuple[int, int]:
    async with harness.server.factory() as db:
        incidents = await db.scalar(select(func.count()).select_from(Incident))
        messages = await db.scalar(select(func.count()).select_from(OutboxMessage))
    return int(incidents or 0), int(messages or 0)


async def signed(harness: Harness, body: bytes, content_type: str) -> tuple[int, str]:
    """Sent with a correct signature, computed over the raw bytes (even if not UTF-8)."""
    now = int(time.time())
    secret = (harness.settings.slack_signing_secret or "").encode()
    digest = hmac.new(secret, b"v0:%d:" % now + body, hashlib.sha256).hexdigest()
    response = await harness.slack.send_raw(
        body, content_type=content_type, timestamp=now, signature=f"v0={digest}"
    )
    return response.status, response.body


async def test_a_replayed_request_outside_five_minutes_is_refused(school: Harness) -> None:
    body = urllib.parse.urlencode(
        {"team_id": "T0LARKSPUR", "user_id": TEACHER, "command": "/concern", "trigger_id": "1.2.x"}
    ).encode()
    old = int(time.time()) - 301
    response = await school.slack.send_raw(
        body,
        content_type="application/x-www-form-urlencoded",
        timestamp=old,
        signature=school.slack.sign(body, old),
    )
    assert response.status == 401


async def test_a_request_replayed_byte_for_byte_within_five_minutes_changes_nothing(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who captured a signed submission and a Mark as read sends them again
    (the signature is still valid): each replay is refused, the concern is not filed
    twice, no DM goes out twice, and the receipt keeps its first time."""
    sent: list[dict[str, object]] = []
    real_send = school.slack.send_raw

    async def recording(body: bytes, **kwargs: object) -> object:
        timestamp = int(time.time())
        sent.append({"body": body, "timestamp": timestamp, **kwargs})
        return await real_send(body, timestamp=timestamp, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(school.slack, "send_raw", recording)
    response = await school.report_concern(
        TEACHER,
        pupil_query=PUPIL_4B,
        narrative="Said she was scared.",
        categories=["Behaviour"],
    )
    assert response.status == 200 and not response.body
    submission = sent[-1]
    assert b"view_submission" in urllib.parse.unquote_to_bytes(submission["body"])  # type: ignore[arg-type]
    await school.delivered()
    before = await stored(school)

    async def replay(captured: dict[str, object]) -> int:
        body = captured["body"]
        assert isinstance(body, bytes)
        answer = await real_send(
            body,
            content_type=str(captured["content_type"]),
            timestamp=int(captured["timestamp"]),  # type: ignore[call-overload]
            signature=school.slack.sign(body, int(captured["timestamp"])),  # type: ignore[call-overload]
        )
        return answer.status

    assert await replay(submission) == 401
    await school.delivered()
    assert await stored(school) == before == (1, 6)

    channel = school.standin.dm_channel_for(DSL)
    (dm,) = school.standin.messages_in(channel)
    clicked = await school.slack.click_button(DSL, dm, "alert_mark_read", channel_id=channel)
    assert clicked.status == 200
    await school.delivered()
    async with school.server.factory() as db:
        (first_read,) = (await db.scalars(select(ReadReceipt.read_at))).all()
    click = sent[-1]
    assert b"block_actions" in urllib.parse.unquote_to_bytes(click["body"])  # type: ignore[arg-type]
    assert await replay(click) == 401
    await school.delivered()
    async with school.server.factory() as db:
        assert (await db.scalars(select(ReadReceipt.read_at))).all() == [first_read]
    assert len(school.standin.messages_in(channel)) == 1


async def test_a_replayed_login_command_gets_no_second_sign_in_link(school: Harness) -> None:
    body = urllib.parse.urlencode(
        {
            "team_id": "T0LARKSPUR",
            "user_id": DSL,
            "command": "/concern",
            "text": "login",
            "trigger_id": school.standin.register_trigger(DSL),
            "channel_id": "C0GENERAL",
        }
    ).encode()
    now = int(time.time())
    signature = school.slack.sign(body, now)
    answers = [
        await school.slack.send_raw(
            body,
            content_type="application/x-www-form-urlencoded",
            timestamp=now,
            signature=signature,
        )
        for _ in range(3)
    ]
    assert answers[0].status == 200 and "/login/" in answers[0].body
    for replayed in answers[1:]:
        assert replayed.status == 401 and "/login/" not in replayed.body
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(LoginToken)) == 1


async def test_the_same_typeahead_twice_in_a_second_is_answered_both_times(
    school: Harness,
) -> None:
    """A typeahead request carries nothing unique: typing the same letters again within a
    second sends the same signature. It only reads, so it is answered again."""
    view = await school.open_concern(TEACHER)
    sent: list[bytes] = []
    real_send = school.slack.send_raw

    async def recording(body: bytes, **kwargs: object) -> object:
        sent.append(body)
        return await real_send(body, **kwargs)  # type: ignore[arg-type]

    school.slack.send_raw = recording  # type: ignore[method-assign]
    try:
        first = await school.slack.block_suggestion(
            TEACHER, view=view, action_id="pupil_search", block_id="pupil", value=PUPIL_4B
        )
    finally:
        school.slack.send_raw = real_send  # type: ignore[method-assign]
    now = int(time.time())
    again = await school.slack.send_raw(
        sent[0],
        content_type="application/x-www-form-urlencoded",
        timestamp=now,
        signature=school.slack.sign(sent[0], now),
    )
    assert first.status == again.status == 200
    assert again.json == first.json and (first.json or {}).get("options")


@pytest.mark.parametrize("timestamp", ["abc", "1e9", "", "١٢٣", "9" * 40])
async def test_a_timestamp_that_is_not_a_number_is_a_clean_400_with_security_headers(
    school: Harness, timestamp: str
) -> None:
    body = urllib.parse.urlencode({"command": "/concern", "user_id": TEACHER}).encode()
    response = await school.slack.send_raw(
        body,
        content_type="application/x-www-form-urlencoded",
        signature="v0=" + "0" * 64,
        headers={"X-Slack-Request-Timestamp": timestamp},
    )
    assert response.status == (401 if timestamp == "" else 400), response.body
    assert "Traceback" not in response.body
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert "Content-Security-Policy" in response.headers


async def test_a_one_megabyte_body_is_refused(school: Harness) -> None:
    body = b"payload=" + b"x" * (1024 * 1024)
    status, _ = await signed(school, body, "application/x-www-form-urlencoded")
    assert status == 413
    assert await stored(school) == (0, 0)


@pytest.mark.parametrize(
    "body",
    [b"payload=%7Bnot-json", b"payload=%5B1%2C2%5D", b"payload=", b"\xff\xfe\x00garbage"],
    ids=["broken-json", "json-list", "empty", "binary"],
)
async def test_malformed_payloads_do_not_crash_or_store(school: Harness, body: bytes) -> None:
    status, _ = await signed(school, body, "application/x-www-form-urlencoded")
    assert status in (400, 401, 403, 404)
    assert await stored(school) == (0, 0)
    unsigned = await school.slack.send_raw(b"x", content_type="text/plain", signature="")
    assert unsigned.status == 401  # still serving, still checking signatures first


async def test_unknown_callback_and_action_ids_are_answered_without_effect(school: Harness) -> None:
    view = await school.open_concern(TEACHER)
    forged = dict(view, callback_id="something_else")
    school.standin.views[view["id"]] = forged
    response = await school.slack.view_submission(TEACHER, view=forged, values={})
    assert response.status == 404
    response = await school.slack.block_actions(
        TEACHER, action_id="no_such_action", block_id="nowhere", value="1", view=view
    )
    assert response.status == 404
    assert await stored(school) == (0, 0)
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(ReadReceipt)) == 0


async def test_a_pupil_id_from_another_workspace_is_refused(school: Harness) -> None:
    async with school.server.factory() as db, db.begin():
        stranger = await pupil_at_another_school(
            db, team_id="T0OTHER", upn="Y123456789012", cipher=school.server.cipher
        )
        await db.flush()
        stranger_id = stranger.id
    view = await school.open_concern(TEACHER)
    response = await school.slack.view_submission(
        TEACHER,
        view=view,
        values={
            "pupil": {"text": "Quenby Outsider", "value": str(stranger_id)},
            "narrative": "x",
            "categories": ["Behaviour"],
            "parents_contacted": "yes",
        },
    )
    assert response.json and "pupil" in response.json["errors"]
    assert await stored(school) == (0, 0)


async def test_a_json_body_pretending_to_be_an_event_from_another_team(school: Harness) -> None:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0STRANGER",
            "event_id": "Ev1",
            "event": {"type": "app_home_opened", "user": TEACHER, "tab": "home"},
        }
    )
    status, _ = await signed(school, body.encode(), "application/json")
    assert status == 403
    assert school.standin.calls_to("views.publish") == []
