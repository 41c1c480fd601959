"""A subject access request in a real browser (headless Chromium, Playwright), on both
databases: the DSL opens it from the pupil's chronology, keeps one proposed name in the
pack, blacks out a phrase, and the preview shows the pack as it will be exported."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from testing.harness import Harness
from tests.browser.test_allegation import page_for
from tests.handlers.web.test_subject_access import NARRATIVE
from tests.support.browser import playwright_or_skip, snap
from tests.support.clock import LONDON
from tests.support.records import pupil_by_upn
from tests.support.school import DSL, PUPIL_4B
from tests.support.slack import file_concern

if TYPE_CHECKING:
    from playwright.async_api import Browser

expect = playwright_or_skip().expect

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_dsl_reviews_the_redactions_of_a_subject_access_request(
    school: Harness, browser: Browser, db_name: str
) -> None:
    await file_concern(school, narrative=NARRATIVE)
    pupil = await pupil_by_upn(school, PUPIL_4B)
    received = dt.datetime.now(LONDON).date() - dt.timedelta(days=2)
    async for page in page_for(browser, school, DSL):
        await page.goto(f"/pupils/{pupil.id}")
        await page.get_by_label("Date received").fill(received.isoformat())
        await page.get_by_label("Who asked").fill("Her father, by email")
        await page.get_by_role("button", name="Open subject access request").click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text(
            "Subject access request #1"
        )
        await expect(page.locator("#sar-due")).to_contain_text("due in")
        rows = page.locator("#redaction-list .redaction-phrase")
        await expect(rows).to_have_text(["Elin Larkham", "Osian Carrow", "Bee"])
        preview = page.locator("#sar-pack")
        await expect(preview).not_to_contain_text("Osian")
        await page.get_by_role("button", name="Keep in the pack (Bee)").click()
        await expect(page.locator("#redaction-list .redaction-removed")).to_contain_text("Bee")
        await expect(preview).to_contain_text("Bee told Mrs Hughes")
        await page.get_by_label("Black out a word or phrase").fill("blue house")
        await page.get_by_role("button", name="Add redaction").click()
        await expect(preview).not_to_contain_text("blue house")
        await expect(preview).to_contain_text("█ redacted")
        await snap(page, "subject-access", db_name)
        await page.get_by_role("link", name="Subject access").click()
        await expect(page.locator("#sar-1")).to_contain_text("due in")
