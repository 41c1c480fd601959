"""An allegation about an adult in a real browser (headless Chromium, Playwright), on both
databases: the head reads it (who it is about, the LADO consultation due) and records
that no referral is needed; the deputy DSL it is about gets the one 404 page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from handlers.web.security import cookie_name
from testing.harness import Harness
from tests.handlers.test_allegations import ALLEGATION, allege
from tests.support.browser import WAIT_MS, playwright_or_skip, snap
from tests.support.school import DEPUTY, HEAD, TA, name_of
from tests.support.web import sign_in

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

expect = playwright_or_skip().expect

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def page_for(browser: Browser, school: Harness, user_id: str) -> AsyncIterator[Page]:
    user = await sign_in(school, user_id, remember=True)
    name = cookie_name(school.server.web_deps)
    cookie = next(c for c in user.http.cookie_jar if c.key == name)
    await user.close()
    context = await browser.new_context(base_url=school.server.url, locale="en-GB")
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    await context.add_cookies([{"name": name, "value": cookie.value, "url": school.server.url}])
    yield await context.new_page()
    await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def filed(school: Harness) -> Harness:
    response = await allege(school, TA, DEPUTY)
    assert response.status == 200 and not response.body  # type: ignore[attr-defined]
    await school.delivered()
    return school


async def test_the_head_records_no_referral_needed_and_the_deputy_sees_nothing(
    filed: Harness, browser: Browser, db_name: str
) -> None:
    async for page in page_for(browser, filed, HEAD):
        await page.goto("/alerts")
        await page.get_by_role("link", name="#1").first.click()
        await expect(page.locator("#allegation-about")).to_have_text(
            f"A member of staff: {name_of(DEPUTY)}"
        )
        await expect(page.get_by_text(ALLEGATION)).to_be_visible()
        await expect(page.locator(".referral-state").first).to_contain_text("Consultation due")
        # Neither picker offers the adult it is about (nor does the page's own list).
        for picker, field in (
            ("Also alert (optional)", "action-alert"),
            ("Colleague", "invite-staff"),
        ):
            await page.get_by_role("combobox", name=picker).fill("okaf")
            await expect(page.locator(f"#{field}-picker-status")).to_have_text("No matches")
            await expect(
                page.locator(f"#{field}-picker-listbox [role=option]:visible")
            ).to_have_count(0)
            await page.keyboard.press("Escape")
            await page.keyboard.press("Escape")
        await expect(page.locator("option", has_text=name_of(DEPUTY))).to_have_count(0)
        await page.get_by_role("textbox", name="Action").fill(
            "Discussed with the LADO's duty line: no referral."
        )
        await page.get_by_label("No referral needed (say why in the action)").check()
        await page.get_by_role("button", name="Add action").click()
        await expect(page.locator(".referral-state").first).to_have_text("Closed")
        await snap(page, "allegation", db_name)
    async for page in page_for(browser, filed, DEPUTY):
        response = await page.goto("/incidents/1")
        assert response is not None and response.status == 404
        await page.goto("/alerts")
        await expect(page.get_by_role("link", name="#1")).to_have_count(0)
