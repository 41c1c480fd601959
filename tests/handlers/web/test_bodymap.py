"""Body maps over HTTP on both databases: placed by named region (no script) or by
position on the figure, stored encrypted, shown on the incident page with the guidance
beside the form, refused when empty or incomplete, and the one 404 for anyone who may
not see the concern."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from store.models import BodyMap
from testing.harness import Harness
from tests.handlers.web.test_files import raw_database
from tests.support.records import audit_events
from tests.support.school import TEACHER, TEACHER_3A
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

NOTE = "She said her brother grabbed her arm on the stairs yesterday evening."


async def test_a_body_map_is_drawn_stored_encrypted_and_shown(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        status, body = await teacher.get("/incidents/1")
        assert 'id="no-body-maps"' in body and 'href="/incidents/1/body-map"' in body
        status, body = await teacher.get("/incidents/1/body-map")
        assert status == 200 and 'id="bodymap-guidance"' in body
        assert "Do not examine the child" in shown(body)
        assert 'id="figure-front"' in body and 'id="figure-back"' in body
        status, body = await teacher.post(
            "/incidents/1/body-map",
            {
                "mark-1-side": "front",
                "mark-1-region": "left upper arm",
                "mark-1-type": "bruise",
                "mark-1-size": "2 to 5 cm",
                "mark-1-note": NOTE,
                "mark-2-side": "back",
                "mark-2-x": "61",
                "mark-2-y": "150",
                "mark-2-type": "scratch",
                "mark-2-size": "under 1 cm",
            },
        )
        assert status == 200 and teacher.last_url.endswith("/incidents/1")
        section = re.search(r'<section class="bodymap-saved".*?</section>', body, re.S)
        assert section is not None
        text = " ".join(shown(re.sub(r"<[^>]+>", "", section.group(0))).split())
        assert "2 marks" in text and "Bruise, 2 to 5 cm, front (left upper arm)" in text
        assert NOTE in text and "Scratch, under 1 cm, back" in text
        # The marks are drawn where they were placed: by region (left upper arm, front:
        # on the viewer's right) and on the figure.
        assert '<circle cx="150" cy="130" r="7">' in section.group(0)
        assert '<circle cx="61" cy="150" r="7">' in section.group(0)
    added = await audit_events(school, "bodymap.add")
    assert [(a.outcome, a.detail) for a in added] == [("ok", "body map 1; 2 marks")]
    raw = await raw_database(school)
    assert b"grabbed her arm" not in raw
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(BodyMap)) == 1
        assert b"grabbed" not in (await db.scalar(select(BodyMap.marks_ct)) or b"")


async def test_an_empty_or_incomplete_body_map_is_refused(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1/body-map")
        status, body = await teacher.post("/incidents/1/body-map", {})
        assert status == 400 and "Place at least one mark." in shown(body)
        status, body = await teacher.post(
            "/incidents/1/body-map",
            {"mark-1-side": "front", "mark-1-type": "burn", "mark-1-note": "kept on error"},
        )
        assert status == 400
        assert "Choose an approximate size." in shown(body)
        assert "Place the mark on the figure or choose where it is." in shown(body)
        assert 'value="kept on error"' in body
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(BodyMap)) == 0
    assert [a.outcome for a in await audit_events(school, "bodymap.add")] == ["failed", "failed"]


async def test_someone_who_may_not_see_the_concern_gets_the_one_404(school: Harness) -> None:
    await file_concern(school, TEACHER)
    async with signed_in(school, TEACHER_3A) as outsider:
        _, missing = await outsider.get("/incidents/99")
        status, body = await outsider.get("/incidents/1/body-map")
        assert status == 404 and body == missing
        await outsider.get("/alerts")
        status, body = await outsider.post(
            "/incidents/1/body-map",
            {"mark-1-side": "front", "mark-1-region": "head", "mark-1-type": "cut",
             "mark-1-size": "under 1 cm"},
        )  # fmt: skip
        assert status == 404 and body == missing
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(BodyMap)) == 0


async def test_the_slack_receipt_links_to_the_body_map(school: Harness) -> None:
    await file_concern(school, TEACHER)
    receipt = school.standin.messages_for_user(TEACHER)[0]
    buttons = [
        element
        for block in receipt["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    body_map = next(b for b in buttons if b["action_id"] == "body_map_open")
    assert body_map["text"]["text"] == "Add a body map"
    assert body_map["url"].endswith("/incidents/1/body-map")
    channel = school.standin.dm_channel_for(TEACHER)
    response = await school.slack.click_button(
        TEACHER, receipt, "body_map_open", channel_id=channel
    )
    assert response.status == 200 and not response.body  # acknowledged; Slack opens the link
