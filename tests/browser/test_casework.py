"""Casework in a real browser (headless Chromium, Playwright), on both databases.

A DSL opens the caseload from the navigation, follows a concern, closes it with the Status
form (an outcome and a reason), sees the status and the action, and finds the caseload
empty and the concern in a search for closed concerns. With the keyboard only, a DSL
makes an action a task (Assign to, Due) for a colleague, who finds it in My tasks.
Screenshots go to `artifacts/screenshots/` (see `tests/support/browser.py`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from handlers.web.security import cookie_name
from store.models import Incident
from testing.harness import Harness
from tests.support.browser import WAIT_MS, playwright_or_skip, snap
from tests.support.clock import LONDON
from tests.support.school import DSL, TA, name_of
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
    async with browser_as(browser, school, DSL) as opened:
        yield opened


@contextlib.asynccontextmanager
async def browser_as(browser: Browser, school: Harness, user_id: str) -> AsyncIterator[Page]:
    """A page signed in as `user_id` (the session cookie of a sign-in over HTTP)."""
    user = await sign_in(school, user_id, remember=True)
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


def same_either_way(day: dt.date) -> dt.date:
    """The first date from `day` whose day and month are the same number (12 December),
    typed the same whichever order the browser's date field asks for (headless Chromium
    shows month/day/year whatever the page's locale)."""
    while day.day != day.month:
        day += dt.timedelta(days=1)
    return day


async def test_a_dsl_sets_a_task_with_the_keyboard_and_the_assignee_finds_it(
    school: Harness, page: Page, browser: Browser, db_name: str
) -> None:
    await file_concern(school)
    async with school.server.factory() as db:
        number = await db.scalar(select(func.max(Incident.number)))
    due = same_either_way(dt.datetime.now(LONDON).date() + dt.timedelta(days=1))
    await page.goto(f"/incidents/{number}")
    form = page.locator("#add-action")
    await form.get_by_label("Action", exact=True).focus()
    await page.keyboard.type("Eleri to ring the grandmother about the GP appointment.")
    # Tab past the two pickers (Also alert, Re-categorise) to Assign to.
    for _ in range(3):
        await page.keyboard.press("Tab")
    assignee = form.get_by_label("Assign to")
    await expect(assignee).to_be_focused()
    await expect(assignee.locator("option:checked")).to_have_text("No one (not a task)")
    await page.keyboard.type(name_of(TA))  # a closed list box picks by typed name
    await expect(assignee.locator("option:checked")).to_have_text(name_of(TA))
    await page.keyboard.press("Tab")
    due_box = form.get_by_label("Due")
    await expect(due_box).to_be_focused()
    await page.keyboard.type(due.strftime("%d%m%Y"))
    await expect(due_box).to_have_value(due.isoformat())
    await snap(page, "task-fields", db_name)
    await form.get_by_role("button", name="Add action").focus()
    await page.keyboard.press("Enter")
    note = page.locator("#actions .task-note")
    await expect(note).to_have_text(
        f"Task for {name_of(TA)}, due {due:%a %d %b %Y} · not done yet."
    )

    async with browser_as(browser, school, TA) as assignees:
        await assignees.goto("/alerts")
        nav = assignees.get_by_role("navigation", name="Main")
        await nav.get_by_role("link", name="My tasks").click()
        rows = assignees.locator("#my-tasks tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text(f"#{number}")
        await expect(rows.first).to_contain_text(f"{due:%a %d %b %Y}")
        await expect(rows.first).to_contain_text(name_of(DSL))
        await snap(assignees, "my-tasks", db_name)
        await rows.first.get_by_role("link", name=f"#{number}").click()
        await expect(assignees.locator("#actions .task-note")).to_contain_text("not done yet")
