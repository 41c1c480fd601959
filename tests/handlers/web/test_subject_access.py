"""Subject access requests (issue 15, DESIGN §14) over HTTP: a key-holder opens one from
the pupil's chronology, reviews the proposed redactions in context (removes one, adds a
phrase), exports the PDF with the redactions applied and marks it completed; each step in
the audit log without a name; anyone else gets the one 404.

The subject is the 4B pupil, Cerys Carrow; Osian Carrow (5C), Elin Larkham (2A) and
"Bee" (Cerys Quarrie, 3A) are other pupils on the fictional roster.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from store.models import SarRedaction, SubjectAccessRequest
from store.subject_access import REDACTED
from testing.harness import Harness
from tests.handlers.test_allegations import ALLEGATION, allege
from tests.handlers.web.test_chronology import needs_pdf_support
from tests.support.clock import LONDON
from tests.support.records import audit_events, pupil_by_upn
from tests.support.school import DSL, HEAD, PUPIL_4B, TEACHER
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

NARRATIVE = (
    "Cerys said Osian Carrow took her lunch again; elin larkham's mum saw it happen near "
    "the blue house on the corner. Bee told Mrs Hughes at break."
)
REQUESTER = "Her mother, Mrs Dunmore-Pryce, by letter"
ROW = re.compile(
    r'<tr id="redaction-(\d+)" class="redaction-(active|removed)">\s*'
    r'<td class="redaction-phrase">([^<]*)</td>'
)


def redactions_on(page: str) -> dict[str, tuple[int, bool]]:
    """The review page's redactions: phrase -> (its number, still applied)."""
    return {m[3]: (int(m[1]), m[2] == "active") for m in ROW.finditer(page)}


def received() -> str:
    return (dt.datetime.now(LONDON).date() - dt.timedelta(days=3)).isoformat()


async def open_sar(school: Harness, user: object, *, staff: bool = False) -> tuple[int, str]:
    pupil = await pupil_by_upn(school, PUPIL_4B)
    await user.get(f"/pupils/{pupil.id}")  # type: ignore[attr-defined]
    form = {"received_on": received(), "requester": REQUESTER}
    if staff:
        form["redact_staff"] = "Y"
    return await user.post(f"/pupils/{pupil.id}/sar", form)  # type: ignore[attr-defined,no-any-return]


async def test_a_keyholder_reviews_the_redactions_and_exports_a_redacted_pack(
    school: Harness,
) -> None:
    await file_concern(school, narrative=NARRATIVE)
    async with signed_in(school, DSL) as dsl:
        status, page = await open_sar(school, dsl)
        assert status == 200 and dsl.last_url.endswith("/sar/1")
        # The other pupils' names are proposed, each shown in context; the subject's not.
        found = redactions_on(page)
        assert set(found) == {"Osian Carrow", "Elin Larkham", "Bee"}
        assert all(active for _, active in found.values())
        assert "<mark>elin larkham&#39;s</mark> mum saw it" in page
        assert "Hughes" not in found  # staff names only when asked
        assert REQUESTER.replace("'", "&#39;") in page and "one calendar month" not in page
        # The preview is already redacted.
        preview = shown(page).split("The pack as it will be exported")[1]
        assert "Osian" not in preview and "larkham" not in preview
        assert f"Cerys said {REDACTED} took her lunch" in preview

        # The DSL keeps "Bee" in the pack, and blacks out the address.
        bee, _ = found["Bee"]
        status, page = await dsl.post(f"/sar/1/redactions/{bee}/remove")
        assert status == 200 and redactions_on(page)["Bee"] == (bee, False)
        status, page = await dsl.post("/sar/1/redactions", {"phrase": "the Blue  House"})
        assert status == 200 and redactions_on(page)["the Blue House"][1] is True

        # The export: the PDF's text has no redacted phrase.
        needs_pdf_support()
        pypdf = pytest.importorskip("pypdf")
        async with dsl.http.post(
            f"{school.server.url}/sar/1/export", data={"csrf": _csrf(page)}
        ) as got:
            assert got.status == 200 and got.content_type == "application/pdf"
            assert got.headers["Cache-Control"] == "no-store"
            body = await got.read()
        text = " ".join(
            " ".join((p.extract_text() or "").split())
            for p in pypdf.PdfReader(io.BytesIO(body)).pages
        )
        for gone in ("Osian", "Larkham", "larkham", "blue house", "Dunmore"):
            assert gone not in text
        assert "Bee told Mrs Hughes" in text  # kept by the DSL's decision
        assert "redacted" in text and "Cerys said" in text and "took her lunch" in text
        assert "Cerys Carrow" in text  # the pupil the pack is about

        status, page = await dsl.post("/sar/1/complete", {"csrf": _csrf(page)})
        assert status == 200 and "Completed" in shown(page)
        status, page = await dsl.get("/sar")
        assert "Completed" in shown(page) and 'href="/sar/1"' in page

    # Who asked, and every phrase, stored encrypted.
    async with school.server.factory() as db:
        request = await db.scalar(select(SubjectAccessRequest))
        assert request is not None and request.completed_at is not None
        assert request.exported_at is not None
        assert b"Dunmore" not in (request.requester_ct or b"")
        phrases = list(await db.scalars(select(SarRedaction.phrase_ct)))
        assert len(phrases) == 4 and not any(b"Osian" in p or b"Blue" in p for p in phrases)
    # The audit log: each step, by numbers only.
    for action in ("sar.open", "sar.view", "sar.redaction_remove", "sar.redaction_add"):
        assert await audit_events(school, action), action
    [export] = await audit_events(school, "sar.export")
    assert export.detail is not None and export.detail.endswith("3 redactions")
    [removed] = await audit_events(school, "sar.redaction_remove")
    assert removed.detail == f"request 1; redaction {bee} (pupil) removed"
    [completed] = await audit_events(school, "sar.complete")
    assert completed.detail == "request 1"
    details = ""
    for action in ("sar.open", "sar.view", "sar.redaction_add", "sar.export"):
        details += " ".join(e.detail or "" for e in await audit_events(school, action))
    for secret in ("Osian", "Larkham", "Blue", "Dunmore", "Cerys", "Carrow"):
        assert secret not in details


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match[1]


async def test_staff_names_are_proposed_when_asked(school: Harness) -> None:
    await file_concern(school, narrative=NARRATIVE)
    async with signed_in(school, DSL) as dsl:
        status, page = await open_sar(school, dsl, staff=True)
    assert status == 200
    found = redactions_on(page)
    # Mrs Hughes in the text; the author (Chitra Patel) on the "Recorded by" line.
    assert {"Hughes", "Chitra Patel"} <= set(found)
    assert "Recorded by Chitra Patel" not in shown(page).split("exported")[-1]


async def test_a_concern_about_an_adult_is_never_in_the_pack(school: Harness) -> None:
    await file_concern(school, narrative=NARRATIVE)
    response = await allege(school, TEACHER, DSL)
    assert response.status == 200  # type: ignore[attr-defined]
    await school.delivered()
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, HEAD) as head:
        _, chronology = await head.get(f"/pupils/{pupil.id}")
        assert ALLEGATION in chronology  # the head, its manager, sees it there
        status, page = await open_sar(school, head)
    assert status == 200
    assert ALLEGATION not in page and "took her lunch" in page


async def test_only_keyholders_reach_subject_access_pages(school: Harness) -> None:
    await file_concern(school, narrative=NARRATIVE)
    async with signed_in(school, DSL) as dsl:
        status, _ = await open_sar(school, dsl)
        assert status == 200
        assert (await dsl.get("/sar/99"))[0] == 404
        assert (await dsl.post("/sar/99/export"))[0] == 404
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, TEACHER) as teacher:
        for path in ("/sar", "/sar/1"):
            status, page = await teacher.get(path)
            assert status == 404 and "Osian" not in page
        await teacher.get("/alerts")
        for path in (
            "/sar/1/export",
            "/sar/1/complete",
            "/sar/1/redactions",
            f"/pupils/{pupil.id}/sar",
        ):
            assert (await teacher.post(path, {"phrase": "x", "requester": "x"}))[0] == 404
    async with school.server.factory() as db:
        request = await db.scalar(select(SubjectAccessRequest))
        assert request is not None and request.completed_at is None and request.exported_at is None
        assert len(list(await db.scalars(select(SubjectAccessRequest)))) == 1
    refused = [e for e in await audit_events(school, "sar.export") if e.outcome == "refused"]
    assert len(refused) == 2  # the DSL's /sar/99 and the teacher's
