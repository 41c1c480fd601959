"""The Slack endpoint: only correctly signed requests from Vigil's workspace get in."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
import structlog
from sqlalchemy import func, select

from bot import logs
from store.models import Incident
from store.pupils import fold, search_text
from testing.harness import Harness
from testing.simulator import SlackSimulator
from tests.support.records import pupil_with_upn
from tests.support.school import DSL, PUPIL_4B, TEACHER


def command_body(team_id: str = "T0LARKSPUR") -> bytes:
    return urllib.parse.urlencode(
        {
            "team_id": team_id,
            "user_id": TEACHER,
            "command": "/concern",
            "text": "",
            "trigger_id": "1.2.abc",
            "channel_id": "C1",
        }
    ).encode()


async def test_wrong_signature_is_refused_with_401(school: Harness) -> None:
    response = await school.slack.send_raw(
        command_body(), content_type="application/x-www-form-urlencoded", signature="v0=bad"
    )
    assert response.status == 401
    assert school.standin.calls_to("views.open") == []


async def test_stale_timestamp_is_refused_with_401(school: Harness) -> None:
    stale = int(time.time()) - 6 * 60
    body = command_body()
    response = await school.slack.send_raw(
        body,
        content_type="application/x-www-form-urlencoded",
        timestamp=stale,
        signature=school.slack.sign(body, stale),
    )
    assert response.status == 401


async def test_missing_signature_is_refused_with_401(school: Harness) -> None:
    response = await school.slack.send_raw(
        command_body(), content_type="application/x-www-form-urlencoded", signature=""
    )
    assert response.status == 401


async def test_another_workspace_is_turned_away(school: Harness) -> None:
    stranger = SlackSimulator(
        app_url=f"{school.server.url}/slack/events",
        signing_secret=school.settings.slack_signing_secret or "",
        standin=school.standin,
        team_id="T0STRANGER",
    )
    async with stranger:
        command = await stranger.slash_command(TEACHER)
        view = {"id": "V0NONE", "type": "modal", "blocks": []}
        suggestion = await stranger.block_suggestion(
            TEACHER, view=view, action_id="pupil_search", block_id="pupil", value="z0"
        )
    assert command.status == 200 and "not set up" in command.body
    assert suggestion.status == 403
    assert school.standin.calls_to("views.open") == []


async def test_healthz_reports_database_and_outbox(school: Harness) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{school.server.url}/healthz") as response,
    ):
        body = await response.json()
    assert response.status == 200
    assert body == {"status": "ok", "database": "ok", "outbox_pending": 0}


async def test_no_pupil_name_or_narrative_in_any_log_line(
    school: Harness, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Vigil's own DEBUG level, as an operator would set it; caplog sees every record emitted.
    logs.configure("DEBUG")
    try:
        narrative = "Quillon said the bruise came from a belt buckle at home"
        await school.report_concern(
            TEACHER, pupil_query=PUPIL_4B, narrative=narrative, categories=["Medical"]
        )
        view = await school.open_concern(TEACHER)
        await school.pick_pupil(TEACHER, view, PUPIL_4B)
        bad = await school.slack.view_submission(
            TEACHER, view=view, values={"narrative": narrative, "categories": ["Medical"]}
        )
        assert bad.json and bad.json["response_action"] == "errors"
        await school.delivered()
    finally:
        logs.configure("WARNING")
    async with school.server.factory() as session:
        pupil = await pupil_with_upn(school, session, PUPIL_4B)
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
    assert pupil is not None
    captured = capfd.readouterr()
    everything = "\n".join([captured.out, captured.err, *(r.getMessage() for r in caplog.records)])
    assert "concern.filed" in everything  # the logs were captured
    for secret in (pupil.forename, pupil.surname, pupil.upn, "Quillon", "belt buckle"):
        assert secret.lower() not in everything.lower(), secret


def test_hyphenated_and_apostrophe_names_are_found_by_each_part() -> None:
    text = search_text(upn="A1", forename="Zoë", surname="O'Neill-Ward", preferred_name=None)
    for word in ("zoe", "o'neill-ward", "neill", "ward"):
        assert f" {fold(word)}" in text


def test_json_logs_are_valid_json(capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "json")
    try:
        logging.getLogger("bot.test").info("hello")
    finally:
        logs.configure("WARNING")
    line = capfd.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["event"] == "hello"


def test_json_logs_keep_the_traceback_of_an_error(capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "json")
    try:
        try:
            raise ConnectionRefusedError("database gone")
        except ConnectionRefusedError:
            structlog.get_logger("bot.test").exception("concern.save_failed")
            logging.getLogger("bot.test").exception("stdlib.failed")
    finally:
        logs.configure("WARNING")
    lines = [json.loads(line) for line in capfd.readouterr().err.strip().splitlines()[-2:]]
    for entry in lines:
        assert "Traceback" in entry["exception"] and "ConnectionRefusedError" in entry["exception"]


async def test_web_view_logs_no_pupil_name_narrative_or_action_text(
    school: Harness, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    narrative = "Marisol described being shut in the shed overnight"
    action_text = "Phoned the aunt, who confirmed the shed story"
    await school.report_concern(
        TEACHER, pupil_query=PUPIL_4B, narrative=narrative, categories=["Medical"]
    )
    logs.configure("DEBUG")
    try:
        dsl = await school.sign_in(DSL)
        status, page = await dsl.get("/incidents/1")
        assert status == 200 and "shut in the shed" in page
        await dsl.post("/incidents/1/read")
        await dsl.get("/incidents/1")
        await dsl.post("/incidents/1/actions", {"text": action_text})
        await dsl.get("/audit")
        await dsl.close()
        await school.delivered()
    finally:
        logs.configure("WARNING")
    async with school.server.factory() as session:
        pupil = await pupil_with_upn(school, session, PUPIL_4B)
    assert pupil is not None
    captured = capfd.readouterr()
    everything = "\n".join([captured.out, captured.err, *(r.getMessage() for r in caplog.records)])
    assert "incident" in everything  # the web view did log
    for secret in (pupil.forename, pupil.surname, pupil.upn, "Marisol", "shed", "aunt"):
        assert secret.lower() not in everything.lower(), secret


async def test_sign_in_with_slack_settings_in_the_environment_leave_slack_working(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Bolt would otherwise read these and turn into an OAuth installer, refusing commands.
    monkeypatch.setenv("SLACK_CLIENT_ID", "1234.5678")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "standin-client-secret")
    async with Harness(database_url=db_url) as harness:
        await harness.seed_school(tmp_path)
        view = await harness.open_concern(TEACHER)
        assert view["callback_id"] == "concern_submit"
