"""A pupil's chronology and the reports in a real browser: headless Chromium, Playwright.

A DSL finds a pupil, reads their chronology, filters it, sees what a printout looks like,
downloads the PDF (its first page is read back as text) and prints the page from the
browser; then opens the reports, the chart, a CSV, and the governors' report. Each runs
on SQLite and PostgreSQL against the real server and the Slack stand-in.

Screenshots (and the PDFs) go to `artifacts/screenshots/` under the repository (or
`$VIGIL_ARTIFACTS/screenshots`), named by page and database, for people to look at.

Chromium: `/usr/bin/chromium` (Debian's package) or `$VIGIL_CHROMIUM`; never
`playwright install`. Without Playwright or Chromium the module is skipped, saying why
(`tests/support/browser.py`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from handlers.web.security import cookie_name
from store.db import transaction
from store.models import Alert, Incident, Pupil
from testing.harness import Harness
from tests.support.browser import PHONE, SCREENSHOTS, WAIT_MS, playwright_or_skip, snap
from tests.support.clock import LONDON, form_time
from tests.support.records import pupil_with_upn
from tests.support.school import (
    DSL,
    PUPIL_3A,
    PUPIL_4B,
    PUPIL_5C,
    SCHOOL_NAME,
    TEACHER,
    TEACHER_3A,
)
from tests.support.web import sign_in

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

expect = playwright_or_skip().expect
pypdf = pytest.importorskip("pypdf", reason="pypdf is not installed (pip install -e '.[dev]')")

pytestmark = pytest.mark.asyncio(loop_scope="module")

DESKTOP = {"width": 1280, "height": 900}
NARRATIVES = (
    "Came in without a coat for the third day running; said the heating is broken at home.",
    "Upset after lunch: said two older pupils took her lunch money on the way to school.",
    "Fell asleep in maths. Said the baby kept everyone up; mum is working nights now.",
    "Bruise on the left forearm, about 3 cm. Said it happened on the trampoline.",
)
ACTION_TEXT = "Spoke to mum at pick-up. She will get the heating looked at this week."


# -- fixtures (`harness`, `school`, `browser` and `db_name`: tests/browser/conftest.py) ------


@dataclass
class History:
    pupil: Pupil


@pytest_asyncio.fixture(loop_scope="module")
async def history(school: Harness) -> History:
    """Concerns over the last few months, mostly about one 4B pupil; an action on the
    latest that re-categorises it and records a police referral (now overdue)."""
    now = school.now()
    filed = [
        (TEACHER, PUPIL_4B, NARRATIVES[0], ["Well-being"], now - dt.timedelta(days=70), []),
        (
            TEACHER_3A,
            PUPIL_3A,
            NARRATIVES[1],
            ["Behaviour"],
            now - dt.timedelta(days=40),
            [PUPIL_4B],
        ),
        (
            TEACHER,
            PUPIL_4B,
            NARRATIVES[2],
            ["Attendance", "Well-being"],
            now - dt.timedelta(days=20),
            [],
        ),
        (TEACHER, PUPIL_5C, NARRATIVES[3], ["Medical"], now - dt.timedelta(days=12), []),
        (TEACHER, PUPIL_4B, NARRATIVES[3], ["Medical"], now - dt.timedelta(days=5), []),
    ]
    for author, upn, text, categories, happened, linked in filed:
        response = await school.report_concern(
            author,
            pupil_query=upn,
            narrative=text,
            categories=categories,
            linked_queries=linked,
            happened_at=happened,
        )
        assert response.status == 200 and not response.body, response.body
    await school.delivered()
    referred = form_time(now - dt.timedelta(days=4))
    user = await sign_in(school, DSL, remember=True)
    try:
        await user.get("/incidents/5")
        status, _ = await user.post(
            "/incidents/5/actions",
            {
                "text": ACTION_TEXT,
                "categories": "Safeguarding",
                "agency": "Police",
                "referred_at": referred,
                "reference": "PC-2291",
            },
        )
        assert status == 200
    finally:
        await user.close()
    # The alerts about #1 went out when it happened, and nobody has read them since.
    async with transaction(school.server.factory) as db:
        await db.execute(
            update(Alert)
            .where(
                Alert.incident_id
                == select(Incident.id).where(Incident.number == 1).scalar_subquery()
            )
            .values(created_at=now - dt.timedelta(days=70))
        )
    async with school.server.factory() as db:
        pupil = await pupil_with_upn(school, db, PUPIL_4B)
    assert pupil is not None
    return History(pupil)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, school: Harness) -> AsyncIterator[Page]:
    """A browser signed in as the DSL (the session cookie of a sign-in over HTTP)."""
    user = await sign_in(school, DSL, remember=True)
    name = cookie_name(school.server.web_deps)
    cookie = next(c for c in user.http.cookie_jar if c.key == name)
    await user.close()
    context: BrowserContext = await browser.new_context(
        base_url=school.server.url,
        viewport=DESKTOP,
        accept_downloads=True,
        locale="en-GB",
        timezone_id="Europe/London",
    )
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    await context.add_cookies([{"name": name, "value": cookie.value, "url": school.server.url}])
    opened = await context.new_page()
    yield opened
    await context.close()


# -- helpers --------------------------------------------------------------------------------


def pdf_pages(data: bytes) -> list[str]:
    """Each page's text, whitespace collapsed."""
    return [
        " ".join((p.extract_text() or "").split()) for p in pypdf.PdfReader(io.BytesIO(data)).pages
    ]


# -- the chronology ---------------------------------------------------------------------------


async def test_chronology_filters_prints_and_downloads_as_pdf(
    school: Harness, history: History, page: Page, db_name: str
) -> None:
    pupil = history.pupil
    await page.goto("/alerts")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Pupils").click()
    await expect(page.get_by_role("heading", name="Pupils")).to_be_visible()
    await page.get_by_label("Name or UPN").fill(pupil.surname)
    await page.get_by_role("button", name="Search").click()
    # Two pupils may share a name: the row with the right UPN.
    await page.locator("#pupil-results tr", has_text=pupil.upn).get_by_role("link").click()
    await expect(page).to_have_url(f"{school.server.url}/pupils/{pupil.id}")

    heading = page.get_by_role("heading", name=f"Chronology: {pupil.display_name}")
    await expect(heading).to_be_visible()
    rows = page.locator("#chronology-table tbody tr.entry")
    # #1, #2 (linked), #3, #5, then the referral and the action on #5; not #4.
    await expect(rows).to_have_count(6)
    await expect(rows.nth(0)).to_contain_text(NARRATIVES[0])
    await expect(rows.nth(1)).to_contain_text("Linked pupil")
    await expect(rows.nth(4)).to_contain_text("Police")
    await expect(rows.nth(4)).to_contain_text("Overdue")
    await expect(rows.nth(5)).to_contain_text(ACTION_TEXT)
    await expect(page.locator(".running-head")).to_be_hidden()  # on screen: no running head
    await snap(page, "chronology", db_name)

    # Filter: Well-being finds #1 and #3.
    await page.locator(".category-filter summary").click()
    await page.get_by_label("Well-being").check()
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(re.compile(rf"/pupils/{pupil.id}\?.*category=Well-being"))
    await expect(rows).to_have_count(2)
    await expect(page.locator("#doc-categories")).to_have_text("Well-being")
    await page.get_by_role("link", name="Clear").click()
    await expect(rows).to_have_count(6)

    # On a phone, each entry is a block: the page does not scroll sideways.
    await page.set_viewport_size(PHONE)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a 390px phone"
    await snap(page, "chronology-phone", db_name)
    await page.set_viewport_size(DESKTOP)

    # As printed: no filter, no menu; the running head names school, pupil and dates.
    await page.emulate_media(media="print")
    await expect(page.locator("#chronology-filter")).to_be_hidden()
    await expect(page.locator("header.top")).to_be_hidden()
    running = page.locator(".running-head")
    await expect(running).to_be_visible()
    for text in (SCHOOL_NAME, pupil.display_name, "All dates", "CONFIDENTIAL"):
        await expect(running).to_contain_text(text)
    await snap(page, "chronology-print", db_name)
    # Chromium's own print to PDF: school, pupil, dates, page numbers and Confidential on
    # every page.
    printed = pdf_pages(await page.pdf(prefer_css_page_size=True))
    for number, text in enumerate(printed, start=1):
        assert f"Page {number} of {len(printed)}" in text, text
        for expected in (SCHOOL_NAME, pupil.display_name, "All dates", "CONFIDENTIAL"):
            assert expected in text, (number, expected, text)
    await page.emulate_media(media="screen")

    # The PDF download (WeasyPrint, on the server): its first page, read as text.
    from handlers.web.pdf import pdf_support

    if reason := pdf_support():
        pytest.skip(f"server-side PDF: {reason}")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download PDF").click()
    download = await info.value
    assert download.suggested_filename.startswith(f"chronology-{pupil.id}-")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = SCREENSHOTS / f"chronology-{db_name}.pdf"
    await download.save_as(saved)
    pages = pdf_pages(await asyncio.to_thread(saved.read_bytes))
    first = pages[0]
    for expected in (
        SCHOOL_NAME,
        f"Chronology: {pupil.display_name}",
        pupil.upn,
        "All dates",
        "Confidential",
        "CONFIDENTIAL",
        f"Page 1 of {len(pages)}",
        NARRATIVES[0],
        "Linked pupil",
        "Produced",
        "by Alys Hughes",
    ):
        assert expected in first, (expected, first)


# -- reports -------------------------------------------------------------------------------


async def test_reports_chart_tables_csv_and_governors_report(
    school: Harness, history: History, page: Page, db_name: str
) -> None:
    today = school.now().astimezone(LONDON).date()
    start = (today - dt.timedelta(days=75)).replace(day=1)
    await page.goto("/alerts")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    await expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    # Choose the range: the last three months or so.
    await page.get_by_label("From", exact=True).fill(start.isoformat())
    await page.get_by_label("To", exact=True).fill(today.isoformat())
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#report-scope")).to_contain_text(SCHOOL_NAME)

    chart = page.locator("#category-chart > svg")
    await expect(chart).to_be_visible()
    title = await chart.locator("title").first.text_content()
    assert title and title.startswith("Incidents by category and month")
    assert await chart.locator("rect").count() >= 4
    table = page.locator("#category-table")
    await expect(table).to_contain_text("Safeguarding")  # #5, re-categorised
    await expect(table.locator("tr.total")).to_contain_text("5")
    await expect(page.locator("#referral-table tr.overdue")).to_have_count(1)
    await expect(page.locator("#referral-table tr.overdue")).to_contain_text("Police")
    await expect(page.locator("#year-table")).to_contain_text("4")
    late = page.locator("#alert-table tbody tr")
    await expect(late).to_have_count(5)  # #1's five alerts, never read
    await expect(late.first).to_contain_text("1")
    await snap(page, "reports", db_name)

    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download open referrals (CSV)").click()
    download = await info.value
    assert download.suggested_filename.startswith("vigil-referrals-")
    data = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert data.startswith(b"\xef\xbb\xbf") and b"Police" in data

    await page.get_by_role("link", name="governors' report").click()
    await expect(page.get_by_role("heading", name="Governors' report")).to_be_visible()
    await expect(page.locator("#counts-only")).to_contain_text("names no pupil")
    await expect(page.locator("#stat-incidents")).to_have_text("5")
    main = await page.locator("main").inner_text()
    assert history.pupil.display_name not in main and "Chitra Patel" not in main
    await snap(page, "governors", db_name)

    await page.emulate_media(media="print")
    await expect(page.locator("#report-range")).to_be_hidden()
    await snap(page, "governors-print", db_name)
    await page.emulate_media(media="screen")
