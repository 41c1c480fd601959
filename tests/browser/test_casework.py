"""Closing a concern in a real browser (headless Chromium, Playwright), on both databases.

A DSL opens the caseload from the navigation, follows a concern, closes it with the Status
form (an outcome and a reason), sees the status and the action, and finds the caseload
empty and the concern in a search for closed concerns. Screenshots go to
`artifacts/screenshots/` (see `tests/support/browser.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from handlers.web.security import cookie_name
from testing.harness import Harness
from tests.support.browser import WAIT_MS, playwright_or_skip, snap
from tests.support.school import DSL
from tests.support.slack import file_concern
from tests.support.web import sign_in

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

expect = playwright_or_skip().expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

REASON = "Spoke to dad; the coat was in the wash. Nothing further."


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, school: Harness) -> AsyncIterator[Page]:
    """A browser signed in as the DSL (the session cookie of a sign-in over HTTP)."""
    user = await sign_in(school, DSL, remember=True)
    name = cookie_name(school.server.web_deps)
    cookie = next(c for c in user.http.cookie_jar if c.key == name)
    await user.close()
    context: BrowserContext = await browser.new_context(
        base_url=school.server.url, locale="en-GB", timezone_id="Europe/London"
    )
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    await context.add_cookies([{"name": name, "value": cookie.value, "url": school.server.url}])
    opened = await context.new_page()
    yield opened
    await context.close()


async def test_a_dsl_closes_a_concern_from_the_caseload(
    school: Harness, page: Page, db_name: str
) -> None:
    await file_concern(school)
    await page.goto("/alerts")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Caseload").click()
    await expect(page.get_by_role("heading", name="Caseload", exact=True)).to_be_visible()
    rows = page.locator("#caseload tbody tr")
    await expect(rows).to_have_count(1)
    await snap(page, "caseload", db_name)
    await rows.first.get_by_role("link", name="#1").click()
    await expect(page.locator("#case-status .badge")).to_have_text("Open")

    form = page.locator("#status-form")
    await form.get_by_label("Closed").check()
    await form.get_by_label("Outcome (when closing)").select_option("no further action")
    await form.get_by_label("Reason").fill(REASON)
    await form.get_by_role("button", name="Change status").click()

    await expect(page.locator("#case-status")).to_contain_text("Closed (no further action)")
    action = page.locator("#actions li").last
    await expect(action).to_contain_text("Closed, outcome: no further action.")
    await expect(action).to_contain_text(REASON)
    await snap(page, "concern-closed", db_name)

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Caseload").click()
    await expect(page.locator("#caseload-none")).to_be_visible()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    await page.get_by_label("Status").select_option("closed")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#results tbody tr")).to_have_count(1)
    await expect(page.locator("#results tbody tr").first).to_contain_text("no further action")
