"""Files and scanned paper records in a pupil's chronology, on both databases: each file
attached to a concern is listed (page and PDF); a key-holder adds a historic record from
the paper files with its original date, description and scans, and it appears in date
order, marked as imported from paper; nobody else can add one or read its scans.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from store.models import PaperRecord, StoredFile
from testing.harness import Harness
from tests.handlers.web.test_chronology import needs_pdf_support
from tests.support.records import audit_events, pupil_by_upn
from tests.support.school import DSL, PUPIL_4B, TEACHER
from tests.support.slack import file_concern
from tests.support.web import shown, signed_in

SCAN = b"%PDF-1.4\n% scanned at the office\n" + b"0" * 3000
OLD_DESCRIPTION = "Handwritten note from Year 2 teacher about bruising on arm, found in file."


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (200, 60, 40)).save(out, "PNG")
    return out.getvalue()


def entry_kinds(body: str) -> list[str]:
    return re.findall(r'<tr class="entry entry-([a-z]+)', body)


async def test_files_and_paper_records_join_the_chronology_in_date_order(
    school: Harness,
) -> None:
    await file_concern(school, TEACHER, happened_at=school.now() - dt.timedelta(days=3))
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        status, _ = await teacher.upload("/incidents/1/files", "GP letter.pdf", SCAN)
        assert status == 200
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get(f"/pupils/{pupil.id}")
        assert status == 200 and 'id="paper-form"' in body
        assert entry_kinds(body) == ["incident", "file"]
        assert "GP letter.pdf" in shown(body)
        # A body map drawn on the concern joins it too.
        await dsl.get("/incidents/1/body-map")
        status, _ = await dsl.post(
            "/incidents/1/body-map",
            {"mark-1-side": "back", "mark-1-region": "head", "mark-1-type": "bite",
             "mark-1-size": "1 to 2 cm"},
        )  # fmt: skip
        assert status == 200
        status, body = await dsl.get(f"/pupils/{pupil.id}")
        assert entry_kinds(body) == ["incident", "file", "bodymap"]
        assert "Bite</strong>, 1 to 2 cm, back (head)" in body
        status, body = await dsl.send_files(
            f"/pupils/{pupil.id}/paper",
            [("files", "scan page 1.pdf", SCAN), ("files", "scan page 2.pdf", SCAN)],
            {"recorded_on": "2019-03-14", "description": OLD_DESCRIPTION},
        )
        assert status == 200 and dsl.last_url.endswith(f"/pupils/{pupil.id}"), shown(body)
        # Oldest first: the paper record (2019), the concern, its file, its body map.
        assert entry_kinds(body) == ["paper", "incident", "file", "bodymap"]
        row = re.search(r'<tr class="entry entry-paper".*?</tr>', body, re.S)
        assert row is not None
        paper = shown(row.group(0))
        assert "14 Mar 2019" in paper and "Imported from paper" in paper
        assert OLD_DESCRIPTION in paper and "scan page 1.pdf" in paper
        link = re.search(r'href="(/pupils/\d+/paper/\d+/files/\d+)"', row.group(0))
        assert link is not None
        async with dsl.http.get(f"{school.server.url}{link.group(1)}") as response:
            assert response.status == 200 and await response.read() == SCAN
            assert response.headers["Content-Disposition"].startswith("attachment;")
        # A category filter is about concerns: paper records have none.
        status, body = await dsl.get(f"/pupils/{pupil.id}", params={"category": "Behaviour"})
        assert entry_kinds(body) == ["incident", "file", "bodymap"]
    assert len(await audit_events(school, "paper.add")) == 1
    assert [e.outcome for e in await audit_events(school, "file.download")] == ["ok"]
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(StoredFile)) == 3


async def test_the_chronology_pdf_lists_files_paper_records_and_body_maps(
    school: Harness,
) -> None:
    needs_pdf_support()
    pypdf = pytest.importorskip("pypdf")
    await file_concern(school, TEACHER)
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, TEACHER) as teacher:
        await teacher.get("/incidents/1")
        await teacher.upload("/incidents/1/files", "GP letter.pdf", SCAN)
        await teacher.get("/incidents/1")
        await teacher.upload("/incidents/1/files", "arm photo.png", photo())
        await teacher.get("/incidents/1/body-map")
        status, _ = await teacher.post(
            "/incidents/1/body-map",
            {
                "mark-1-side": "front",
                "mark-1-region": "right knee",
                "mark-1-type": "swelling",
                "mark-1-size": "over 5 cm",
                "mark-1-note": "Knee swollen after PE",
            },
        )
        assert status == 200
    async with signed_in(school, DSL) as dsl:
        await dsl.get(f"/pupils/{pupil.id}")
        await dsl.send_files(
            f"/pupils/{pupil.id}/paper",
            [("files", "old scan.pdf", SCAN)],
            {"recorded_on": "2018-09-03", "description": OLD_DESCRIPTION},
        )
        async with dsl.http.get(
            f"{school.server.url}/pupils/{pupil.id}/chronology.pdf"
        ) as response:
            assert response.status == 200
            body = await response.read()
    pages = pypdf.PdfReader(io.BytesIO(body)).pages
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in pages)
    # The photo's preview is drawn in the PDF (an image on a page).
    images = [image for page in pages for image in page.images]
    assert any(image.image is not None and image.image.width == 120 for image in images)
    assert "Imported from paper" in text and "3 Sep 2018" in text
    assert "old scan.pdf" in text and "GP letter.pdf" in text and "File added" in text
    assert "Body map" in text and "Swelling, over 5 cm, front (right knee)" in text
    assert "Knee swollen after PE" in text


async def test_only_a_keyholder_adds_paper_records_or_reads_their_scans(school: Harness) -> None:
    pupil = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        await dsl.get(f"/pupils/{pupil.id}")
        status, _ = await dsl.send_files(
            f"/pupils/{pupil.id}/paper",
            [("files", "scan.pdf", SCAN)],
            {"recorded_on": "2019-03-14", "description": OLD_DESCRIPTION},
        )
        assert status == 200
        status, body = await dsl.send_files(  # a future date: refused, nothing stored
            f"/pupils/{pupil.id}/paper",
            [("files", "scan.pdf", SCAN)],
            {"recorded_on": "2999-01-01", "description": "x"},
        )
        assert status == 400 and "cannot be in the future" in shown(body)
    async with school.server.factory() as db:
        record = await db.scalar(select(PaperRecord))
        file_id = await db.scalar(select(StoredFile.id))
        assert record is not None
        assert await db.scalar(select(func.count()).select_from(PaperRecord)) == 1
    async with signed_in(school, TEACHER) as teacher:
        _, missing = await teacher.get("/pupils/999999")
        status, body = await teacher.get(f"/pupils/{pupil.id}/paper/{record.id}/files/{file_id}")
        assert status == 404 and body == missing
        await teacher.get("/alerts")
        status, body = await teacher.send_files(
            f"/pupils/{pupil.id}/paper",
            [("files", "scan.pdf", SCAN)],
            {"recorded_on": "2019-03-14", "description": "not theirs to add"},
        )
        assert status == 404
    async with school.server.factory() as db:
        assert await db.scalar(select(func.count()).select_from(PaperRecord)) == 1
