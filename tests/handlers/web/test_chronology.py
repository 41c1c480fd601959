"""A pupil's chronology, end to end on both databases: finding the pupil, the entries in
time order (incidents naming them as main or linked pupil, the actions and referrals on
those incidents), the category and date filters, the PDF, the audit trail, and that
nobody but a key-holder can reach any of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import io
import re
import threading

import pytest

from handlers.web import pdf
from store.db import transaction
from testing.harness import Harness
from testing.webclient import WebUser
from tests.support import web
from tests.support.clock import LONDON, form_time
from tests.support.records import audit_events, pupil_at_another_school, pupil_by_upn
from tests.support.school import (
    DSL,
    PUPIL_3A,
    PUPIL_4B,
    PUPIL_5C,
    SCHOOL_NAME,
    TEACHER,
    TEACHER_3A,
)
from tests.support.slack import file_concern
from tests.support.web import shown

FIRST = "Came in upset; said the older boys took her lunch again on the way to school."
SECOND = "Fell asleep twice in maths; said the baby kept everyone up all night."
OTHER = "Nothing to do with the pupil whose chronology is read here."
ACTION_TEXT = "Spoke to mum after school; she will walk her in this week."


# People sign in more than once here: each keeps their authenticator key for the next time.
signed_in = functools.partial(web.signed_in, remember=True)


def entry_ids(body: str) -> list[str]:
    """The chronology's entries, as `kind-id`, in page order."""
    return re.findall(r'<tr class="entry entry-[a-z]+[^"]*" id="entry-([a-z]+-\d+)"', body)


async def history(school: Harness) -> dict[str, dt.datetime]:
    """Three concerns over the last fortnight, and a DSL's action with a referral.

    #1 (8 days ago): about 3A's pupil, with the 4B pupil linked. Medical.
    #2 (4 days ago): about the 4B pupil. Behaviour, re-categorised to Well-being.
    #3 (2 days ago): about a 5C pupil only: never in the 4B pupil's chronology.
    The action on #2 (now) records a Police referral made yesterday, still awaited.
    """
    now = school.now()
    times = {
        "first": now - dt.timedelta(days=8),
        "second": now - dt.timedelta(days=4),
        "other": now - dt.timedelta(days=2),
        "referred": (now - dt.timedelta(days=1)).replace(second=0, microsecond=0),
    }
    await file_concern(
        school,
        pupil_query=PUPIL_3A,
        narrative=FIRST,
        categories=["Medical"],
        happened_at=times["first"],
        linked_queries=[PUPIL_4B],
        author=TEACHER_3A,
    )
    await file_concern(
        school,
        pupil_query=PUPIL_4B,
        narrative=SECOND,
        categories=["Behaviour"],
        happened_at=times["second"],
    )
    await file_concern(
        school,
        pupil_query=PUPIL_5C,
        narrative=OTHER,
        categories=["Medical"],
        happened_at=times["other"],
    )
    async with signed_in(school, DSL) as dsl:
        await dsl.get("/incidents/2")
        status, _ = await dsl.post(
            "/incidents/2/actions",
            {
                "text": ACTION_TEXT,
                "categories": "Well-being",
                "agency": "Police",
                "referred_at": form_time(times["referred"]),
                "reference": "PC-2291",
            },
        )
        assert status == 200 and dsl.last_url.split("#")[0].endswith("/incidents/2")
    return times


# -- finding a pupil --------------------------------------------------------------------------


async def test_pupil_search_by_name_or_upn(school: Harness) -> None:
    target = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get("/pupils")
        assert status == 200 and 'id="pupil-search"' in body and "pupil-results" not in body
        for query in (target.surname, f"{target.forename} {target.surname}", PUPIL_4B.lower()):
            status, body = await dsl.get("/pupils", params={"q": query})
            assert status == 200, query
            assert f'href="/pupils/{target.id}"' in body, query
            assert target.display_name in shown(body)
        status, body = await dsl.get("/pupils", params={"q": "Nobody-by-this-name"})
        assert status == 200 and 'id="no-pupils"' in body
    # Searches are audited by how many were found: never the words typed (they are names).
    searches = await audit_events(school, "pupil.search")
    assert len(searches) == 4 and all(s.detail and s.detail.endswith("found") for s in searches)
    assert not any(target.surname in (s.detail or "") for s in searches)


# -- the chronology -----------------------------------------------------------------------------


async def test_chronology_in_time_order_with_actions_and_referrals(school: Harness) -> None:
    times = await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    other = await pupil_by_upn(school, PUPIL_3A)
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get(f"/pupils/{main.id}")
    assert status == 200
    page = shown(body)
    # #1 (linked), #2 (main), the referral made yesterday, then today's action; not #3.
    kinds = [e.split("-")[0] for e in entry_ids(body)]
    assert kinds == ["incident", "incident", "referral", "action"], entry_ids(body)
    rows = re.findall(r'<tr class="entry[^>]*>(.*?)</tr>', body, re.S)
    assert "#1" in rows[0] and "Linked pupil" in rows[0] and FIRST in shown(rows[0])
    assert "#2" in rows[1] and "Main pupil" in rows[1] and SECOND in shown(rows[1])
    assert "Well-being" in rows[1] and "filed as Behaviour" in shown(rows[1])
    assert "Police" in rows[2] and "PC-2291" in rows[2] and "#2" in rows[2]
    assert ACTION_TEXT in shown(rows[3]) and "Re-categorised to Well-being" in shown(rows[3])
    assert OTHER not in page and "#3" not in page
    # The other pupil on #1 is counted, not named.
    assert "Also names 1 other pupil" in page and other.display_name not in page
    assert "Chronology: " + main.display_name in page and SCHOOL_NAME in page
    # The times shown are school times, oldest first.
    stamps = re.findall(r'<td class="entry-when"><time datetime="([^"]+)"', body)
    assert [dt.datetime.fromisoformat(s) for s in stamps] == sorted(
        dt.datetime.fromisoformat(s) for s in stamps
    )
    assert abs(dt.datetime.fromisoformat(stamps[0]) - times["first"]) < dt.timedelta(seconds=1)
    # Viewing is audited with the pupil's id and the range: never a name.
    views = await audit_events(school, "chronology.view")
    assert [(v.outcome, v.detail) for v in views] == [("ok", f"pupil {main.id}; all dates")]


async def test_the_linked_pupil_sees_the_same_incident_from_their_side(school: Harness) -> None:
    await history(school)
    first = await pupil_by_upn(school, PUPIL_3A)
    async with signed_in(school, DSL) as dsl:
        _, body = await dsl.get(f"/pupils/{first.id}")
    assert [e.split("-")[0] for e in entry_ids(body)] == ["incident"]
    assert "Main pupil" in body and FIRST in shown(body) and SECOND not in shown(body)


async def test_chronology_filters_by_category_and_dates(school: Harness) -> None:
    times = await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    path = f"/pupils/{main.id}"
    async with signed_in(school, DSL) as dsl:
        # Medical: #1 only (it has no actions or referrals).
        _, body = await dsl.get(path, params={"category": "Medical"})
        assert [e.split("-")[0] for e in entry_ids(body)] == ["incident"]
        assert FIRST in shown(body) and SECOND not in shown(body)
        # Well-being (what #2 is now) and Behaviour (what it was filed as) both find #2,
        # with its referral and action.
        for category in ("Well-being", "Behaviour"):
            _, body = await dsl.get(path, params={"category": category})
            assert [e.split("-")[0] for e in entry_ids(body)] == ["incident", "referral", "action"]
        # Two categories: either matches.
        _, body = await dsl.get(path, params=[("category", "Medical"), ("category", "Well-being")])
        assert len(entry_ids(body)) == 4
        # A category nobody used: nothing, and the page says the filter found nothing.
        _, body = await dsl.get(path, params={"category": "Attendance"})
        assert entry_ids(body) == [] and "matches this filter" in body
        # Dates (school days, inclusive): from 5 days ago to 2 days ago: #2 only.
        day = lambda instant: instant.astimezone(LONDON).date().isoformat()  # noqa: E731
        window = {"from": day(times["second"] - dt.timedelta(days=1)), "to": day(times["other"])}
        _, body = await dsl.get(path, params=window)
        assert [e.split("-")[0] for e in entry_ids(body)] == ["incident"]
        assert SECOND in shown(body)
        # From yesterday on: the referral (yesterday) and the action (today).
        _, body = await dsl.get(path, params={"from": day(times["referred"])})
        assert [e.split("-")[0] for e in entry_ids(body)] == ["referral", "action"]
        # Up to the first one's day, with its category: #1.
        _, body = await dsl.get(path, params={"to": day(times["first"]), "category": "Medical"})
        assert [e.split("-")[0] for e in entry_ids(body)] == ["incident"]
        # Nonsense dates are said to be wrong, and the whole chronology is shown.
        status, body = await dsl.get(path, params={"from": "31/02/2026", "to": "2026-01-01"})
        assert status == 200 and 'id="filter-errors"' in body and len(entry_ids(body)) == 4
        status, body = await dsl.get(path, params={"from": "2026-03-02", "to": "2026-03-01"})
        assert "The end date must be on or after the start date." in body
    details = [v.detail for v in await audit_events(school, "chronology.view")]
    assert f"pupil {main.id}; all dates; categories: Medical, Well-being" in details
    assert f"pupil {main.id}; {window['from']}..{window['to']}" in details


def needs_pdf_support() -> None:
    from handlers.web.pdf import pdf_support

    reason = pdf_support()
    if reason:
        pytest.skip(reason)


async def test_chronology_pdf_has_school_pupil_range_pages_and_confidential(
    school: Harness,
) -> None:
    needs_pdf_support()
    pypdf = pytest.importorskip("pypdf")
    await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        async with dsl.http.get(
            f"{school.server.url}/pupils/{main.id}/chronology.pdf",
            params={"from": "2020-01-01"},
        ) as response:
            assert response.status == 200
            assert response.content_type == "application/pdf"
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith("attachment;") and main.surname not in disposition
            assert response.headers["Cache-Control"] == "no-store"
            body = await response.read()
    assert body.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(body))
    pages = [" ".join((p.extract_text() or "").split()) for p in reader.pages]
    first = pages[0]
    for text in (
        SCHOOL_NAME,
        f"Chronology: {main.display_name}",
        main.upn,
        "From 1 Jan 2020",
        "Confidential",
        f"Page 1 of {len(pages)}",
        FIRST,
        "Police",
    ):
        assert text in first, (text, first)
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert SCHOOL_NAME in text and "CONFIDENTIAL" in text and main.display_name in text
    views = await audit_events(school, "chronology.pdf")
    assert [(v.outcome, v.detail) for v in views] == [("ok", f"pupil {main.id}; 2020-01-01..")]


async def test_long_chronology_pdf_repeats_the_heading_on_every_page(school: Harness) -> None:
    needs_pdf_support()
    pypdf = pytest.importorskip("pypdf")
    long_text = " ".join(["She said the same thing again, in the same words, to a TA."] * 45)
    base = school.now() - dt.timedelta(days=30)
    for n in range(6):
        await file_concern(
            school,
            pupil_query=PUPIL_4B,
            narrative=f"Entry {n}. {long_text}",
            categories=["Well-being"],
            happened_at=base + dt.timedelta(days=n),
        )
    main = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        async with dsl.http.get(f"{school.server.url}/pupils/{main.id}/chronology.pdf") as response:
            body = await response.read()
    pages = [
        " ".join((p.extract_text() or "").split()) for p in pypdf.PdfReader(io.BytesIO(body)).pages
    ]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text, text
        assert SCHOOL_NAME in text and "CONFIDENTIAL" in text and "Confidential" in text
        assert main.display_name in text and "All dates" in text


# -- who may see it ---------------------------------------------------------------------------


async def test_only_keyholders_reach_pupils_and_chronologies(school: Harness) -> None:
    await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    paths = [
        "/pupils",
        f"/pupils?q={main.surname}",
        f"/pupils/{main.id}",
        f"/pupils/{main.id}?category=Medical",
        f"/pupils/{main.id}/chronology.pdf",
    ]
    # The author of #2 (a class teacher who can see it) is still not a key-holder.
    async with signed_in(school, TEACHER) as teacher:
        _, missing = await teacher.get("/incidents/999999")  # the one 404 page
        for path in paths:
            status, body = await teacher.get(path)
            assert status == 404, path
            assert body == missing, path
            assert main.display_name not in shown(body) and SECOND not in shown(body)
    refused = [
        e
        for action in ("pupil.search", "chronology.view", "chronology.pdf")
        for e in await audit_events(school, action)
        if e.outcome == "refused"
    ]
    assert len(refused) == len(paths)
    assert all(e.detail == "not a key-holder" for e in refused)


async def test_unknown_pupils_are_not_found_for_keyholders_too(school: Harness) -> None:
    async with signed_in(school, DSL) as dsl:
        _, missing = await dsl.get("/incidents/999999")  # the one 404 page
        for path in ("/pupils/999999", "/pupils/abc", "/pupils/0", "/pupils/999999/chronology.pdf"):
            status, body = await dsl.get(path)
            assert status == 404 and body == missing, path
    refused = [e for e in await audit_events(school, "chronology.view") if e.outcome == "refused"]
    assert [e.detail for e in refused] == [
        "no pupil 999999 here",
        "not a pupil id",
        "not a pupil id",
    ]


async def test_another_schools_pupils_are_not_found(school: Harness) -> None:
    """One deployment, two schools: a key-holder finds and sees only their own pupils."""
    async with transaction(school.server.factory) as db:
        stranger = await pupil_at_another_school(db, cipher=school.server.cipher)
    async with signed_in(school, DSL) as dsl:
        _, missing = await dsl.get("/incidents/999999")
        for path in (f"/pupils/{stranger.id}", f"/pupils/{stranger.id}/chronology.pdf"):
            status, body = await dsl.get(path)
            assert status == 404 and body == missing, path
        for query in ("Outsider", "Y00000000001A"):
            status, body = await dsl.get("/pupils", params={"q": query})
            assert status == 200 and 'id="no-pupils"' in body and "Quenby" not in body


async def test_pages_use_no_inline_script_or_style(school: Harness) -> None:
    await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        for path in (
            "/pupils",
            f"/pupils?q={main.surname}",
            f"/pupils/{main.id}",
            f"/pupils/{main.id}?category=Medical&from=2020-01-01",
            "/reports",
            "/reports/governors",
            "/reports?from=x",
        ):
            status, body = await dsl.get(path)
            assert status == 200, path
            assert "<script>" not in body and "<style" not in body and " style=" not in body
            assert not re.search(r"<[^>]+\son[a-z]+=", body), path


async def test_without_pdf_support_the_pdf_link_says_so_plainly(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(_html: str) -> bytes:
        raise pdf.PdfUnavailable("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr(pdf, "render_pdf", unavailable)
    await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    async with signed_in(school, DSL) as dsl:
        status, body = await dsl.get(f"/pupils/{main.id}/chronology.pdf")
    assert status == 503 and "Use Print on the chronology page" in body


async def test_pdfs_are_made_in_their_own_small_pool_and_beyond_it_the_asker_waits(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_pdf_support()
    made_in: list[str] = []
    at_once = [0, 0]  # now, most
    original = pdf.render_pdf

    def watched(html: str) -> bytes:
        made_in.append(threading.current_thread().name)
        at_once[0] += 1
        at_once[1] = max(at_once)
        try:
            return original(html)
        finally:
            at_once[0] -= 1

    monkeypatch.setattr(pdf, "render_pdf", watched)
    await history(school)
    main = await pupil_by_upn(school, PUPIL_4B)
    url = f"{school.server.url}/pupils/{main.id}/chronology.pdf"

    async def fetch(dsl: WebUser) -> tuple[int, dict[str, str], bytes]:
        async with dsl.http.get(url) as response:
            return response.status, dict(response.headers), await response.read()

    async with signed_in(school, DSL) as dsl:
        answers = await asyncio.gather(*(fetch(dsl) for _ in range(6)))
        assert all(status == 200 and body.startswith(b"%PDF-") for status, _, body in answers)
        assert made_in and all(name.startswith("vigil-pdf") for name in made_in)
        assert at_once[1] <= pdf.POOL.workers
        # A full pool: the asker is told to try again, with the headers every page has.
        monkeypatch.setattr(pdf.POOL, "limit", 1)
        answers = await asyncio.gather(*(fetch(dsl) for _ in range(4)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses[0] == 200 and statuses[-1] == 503
    busy = next(headers for status, headers, _ in answers if status == 503)
    assert busy["Retry-After"] == "5" and busy["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in busy
