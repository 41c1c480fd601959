"""The web view in a real browser: headless Chromium driven by Playwright.

The HTTP-level tests (tests/handlers/web/: test_signin.py, test_pages.py) prove what the server
answers; these prove what a person sees and can do with it: the sign-in pages, the
incident page, the Blank screen control and the idle time-out (CSS and vigil.js), and the
"Not found" page for a concern they may not see. Each test runs on SQLite and PostgreSQL
against the real server and the Slack stand-in.

Screenshots of the main pages go to `artifacts/screenshots/` under the repository (or
`$VIGIL_ARTIFACTS/screenshots`), named by page and database, for people to look at.

Chromium: `/usr/bin/chromium` (Debian's package) or `$VIGIL_CHROMIUM`. Never
`playwright install`. Without Playwright or Chromium the module is skipped, saying why
(`tests/support/browser.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyotp
import pytest
import pytest_asyncio

from testing.harness import Harness
from tests.support.browser import PHONE, WAIT_MS, playwright_or_skip, snap
from tests.support.records import pupil_by_upn
from tests.support.school import (
    CLASS_TEACHER,
    DSL,
    NARRATIVE,
    PUPIL_4B,
    TA,
    TEACHER,
    TEACHER_3A,
    name_of,
)
from tests.support.slack import file_concern

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Route

expect = playwright_or_skip().expect

# One browser for the module: the tests, and the server fixtures they use, share its loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

DESKTOP = {"width": 1280, "height": 800}

TA_NAME = name_of(TA)  # Eleri Lewis, not alerted on it either
ACTION_TEXT = "Spoke to grandmother at pick-up; she will take her to the GP tomorrow."


# -- fixtures (`harness`, `school`, `browser` and `db_name`: tests/browser/conftest.py) -----


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser, school: Harness) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) pointed at this test's server."""
    ctx = await browser.new_context(base_url=school.server.url, viewport=DESKTOP)
    ctx.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    yield ctx
    await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@dataclass
class Concern:
    number: int
    pupil_name: str


@pytest_asyncio.fixture(loop_scope="module")
async def concern(school: Harness) -> Concern:
    """Chitra Patel (4B) has recorded a concern about a 4B pupil in Slack."""
    await file_concern(school, TEACHER, pupil_query=PUPIL_4B, narrative=NARRATIVE)
    pupil = await pupil_by_upn(school, PUPIL_4B)
    return Concern(number=1, pupil_name=pupil.display_name)


# -- helpers -------------------------------------------------------------------------------


def code_for(school: Harness, secret: str) -> str:
    """What the authenticator app shows now, by the server's clock."""
    return pyotp.TOTP(secret).at(school.now())


async def enter_code(page: Page, school: Harness, secret: str) -> None:
    await page.get_by_label("Code").fill(code_for(school, secret))
    await page.get_by_role("button", name="Continue").click()


async def sign_in_with_link(
    page: Page,
    school: Harness,
    user_id: str,
    *,
    secret: str | None = None,
    db_name: str = "",
    shots: bool = False,
) -> str:
    """Type /concern login in Slack, open the link, Continue, enrol or enter the code.

    Returns the authenticator key. The server's clock first moves on one 30 s step, so
    the code is never a replay of the person's previous one.
    """
    school.clock_offset += dt.timedelta(seconds=30)
    link = await school.login_link(user_id)
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Continue to Vigil")).to_be_visible()
    if shots:
        await snap(page, "link-continue", db_name)
    await page.get_by_role("button", name="Continue").click()
    await expect(page).to_have_url(f"{school.server.url}/totp")
    if secret is None:
        await expect(page.get_by_role("heading", name="Set up your authenticator")).to_be_visible()
        await expect(page.locator(".qr svg")).to_be_visible()
        secret = (await page.locator("#totp-secret").inner_text()).replace(" ", "")
        if shots:
            await snap(page, "enrol", db_name)
    else:
        await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    await enter_code(page, school, secret)
    await expect(page).to_have_url(f"{school.server.url}/alerts")
    await expect(page.get_by_role("heading", name="My alerts")).to_be_visible()
    return secret


async def assert_blanked(page: Page) -> None:
    """The cover lies over the whole window and nothing of the page can be seen."""
    cover = page.locator("#blank-screen")
    await expect(cover).to_be_visible()
    await expect(cover).to_contain_text("Screen blanked")
    await expect(page.locator("#narrative")).to_be_hidden()
    await expect(page.locator("main")).to_be_hidden()
    box = await cover.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert box["x"] <= 0 and box["y"] <= 0
    assert box["x"] + box["width"] >= size["width"]
    assert box["y"] + box["height"] >= size["height"]
    # Whatever point of the window one looks at, it is the cover: the narrative's middle,
    # and the corners.
    narrative = await page.locator("#narrative").bounding_box()
    assert narrative is not None
    points = [
        # The narrative's middle, or the window's bottom edge if that is below the fold.
        (
            narrative["x"] + narrative["width"] / 2,
            min(narrative["y"] + narrative["height"] / 2, size["height"] - 2),
        ),
        (1, 1),
        (size["width"] - 2, size["height"] - 2),
    ]
    for x, y in points:
        on_top = await page.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y);"
            " return e && e.closest('#blank-screen') ? 'cover' : (e ? e.outerHTML : null); }",
            [x, y],
        )
        assert on_top == "cover", f"at {x},{y}: {on_top}"
    colour = await cover.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(0, 0, 0)"


async def assert_shown(page: Page) -> None:
    await expect(page.locator("#blank-screen")).to_be_hidden()
    await expect(page.locator("#narrative")).to_be_visible()
    await expect(page.locator("#narrative")).to_have_text(NARRATIVE)


# -- 1. the one-time link ---------------------------------------------------------------


async def test_sign_in_with_one_time_link_enrol_and_see_my_alerts(
    school: Harness, concern: Concern, page: Page, db_name: str
) -> None:
    await page.goto("/signin")
    await expect(page.get_by_role("heading", name="Sign in to Vigil")).to_be_visible()
    await expect(page.get_by_role("link", name="Sign in with Slack")).to_be_visible()
    await expect(page.get_by_text("/concern login")).to_be_visible()
    await snap(page, "signin", db_name)

    await sign_in_with_link(page, school, DSL, db_name=db_name, shots=True)

    # My alerts lists the concern Chitra Patel recorded, unread, and nothing more about it.
    await expect(page.locator("#unread-count")).to_have_text(
        "1 unread. Open a concern to read it, then mark it as read."
    )
    rows = page.locator("#alerts tbody tr")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row.get_by_role("link", name=f"#{concern.number}")).to_be_visible()
    for text in ("New concern", "Chitra Patel", "Behaviour", "Unread"):
        await expect(row).to_contain_text(text)
    body = await page.locator("body").inner_text()
    assert NARRATIVE not in body and concern.pupil_name not in body
    # Signed in as the DSL: her name, the key-holder menu and the session controls show.
    await expect(page.locator("header .me")).to_contain_text("Alys Hughes")
    await expect(page.get_by_role("link", name="Audit log")).to_be_visible()
    await expect(page.get_by_role("button", name="Blank screen")).to_be_visible()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await snap(page, "alerts", db_name)


# -- 2. Sign in with Slack ------------------------------------------------------------------


async def test_sign_in_with_slack_then_code_then_my_alerts(
    school: Harness, concern: Concern, context: BrowserContext, page: Page, db_name: str
) -> None:
    # Alys set up her authenticator on an earlier visit (over plain HTTP, to save time).
    earlier = await school.sign_in(DSL)
    secret = earlier.secret
    await earlier.close()
    assert secret

    # Slack sends the browser back to the public URL (http://127.0.0.1:3000 in the
    # harness); the server listens elsewhere. Play the reverse proxy: redirect there.
    public, actual = school.settings.public_url, school.server.url

    async def to_server(route: Route) -> None:
        await route.fulfill(
            status=303, headers={"Location": route.request.url.replace(public, actual, 1)}
        )

    await context.route(f"{public}/**", to_server)
    school.standin.oidc_sign_in_as(DSL)

    await page.goto("/signin")
    await page.get_by_role("link", name="Sign in with Slack").click()
    # Via the stand-in's authorize page and back to our callback.
    await expect(page.get_by_role("heading", name="Signed in with Slack")).to_be_visible()
    assert page.url.startswith(f"{actual}/auth/slack/callback?")
    authorize = school.standin.calls_to("openid.connect.authorize")
    assert len(authorize) == 1 and authorize[0].params["client_id"] == school.standin.client_id
    await snap(page, "slack-continue", db_name)

    await page.get_by_role("link", name="Continue").click()
    await expect(page).to_have_url(f"{actual}/totp")
    await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    await expect(page.locator(".qr svg")).to_have_count(0)  # enrolled already: no QR code
    await snap(page, "code", db_name)

    # A wrong code: refused, saying so, and still not signed in.
    await page.get_by_label("Code").fill("000000")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await expect(page.get_by_role("link", name="My alerts")).to_have_count(0)

    school.clock_offset += dt.timedelta(seconds=30)  # a later code than the last sign-in
    await enter_code(page, school, secret)
    await expect(page).to_have_url(f"{actual}/alerts")
    await expect(page.locator("#alerts tbody tr")).to_have_count(1)
    await expect(page.locator("#alerts")).to_contain_text(f"#{concern.number}")


# -- 3. an incident ---------------------------------------------------------------------------


async def test_dsl_reads_an_incident_marks_it_read_and_adds_an_action(
    school: Harness, concern: Concern, page: Page, db_name: str
) -> None:
    await sign_in_with_link(page, school, DSL)
    await page.get_by_role("link", name=f"#{concern.number}").click()
    await expect(page).to_have_url(f"{school.server.url}/incidents/{concern.number}")
    await expect(page.get_by_role("heading", name=f"Concern #{concern.number}")).to_be_visible()
    await expect(page.locator("#pupils")).to_contain_text(concern.pupil_name)
    await expect(page.locator("#pupils")).to_contain_text("Main pupil")
    await expect(page.locator("#narrative")).to_have_text(NARRATIVE)
    await expect(page.locator("dl.facts")).to_contain_text("Chitra Patel")
    await snap(page, "incident", db_name)

    # On a phone: the same page, readable without sideways scrolling of the page itself.
    await page.set_viewport_size(PHONE)
    await expect(page.locator("#narrative")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a 390px phone"
    narrative = await page.locator("#narrative").bounding_box()
    assert narrative is not None and narrative["x"] >= 0
    assert narrative["x"] + narrative["width"] <= PHONE["width"]
    font = await page.locator("#narrative").evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert font >= 16
    await snap(page, "incident-phone", db_name)
    await snap(page, "incident-phone-screen", db_name, full_page=False)  # what a phone shows
    await page.set_viewport_size(DESKTOP)

    # Mark as read: the offer goes and her receipt says read, in the web view.
    mine = page.locator("#receipts tr", has_text="Alys Hughes")
    await expect(mine).to_contain_text("Unread")
    await page.get_by_role("button", name="Mark as read").click()
    await expect(page.get_by_role("button", name="Mark as read")).to_have_count(0)
    await expect(mine).to_contain_text("Read")
    await expect(mine).to_contain_text("in the web view")
    await expect(mine).not_to_contain_text("Unread")

    # Add an action and alert Eleri Lewis, who had not been told about the concern.
    assert school.standin.messages_for_user(TA) == []
    await page.get_by_label("Action", exact=True).fill(ACTION_TEXT)
    await page.get_by_role("combobox", name="Also alert (optional)").fill("eler")
    await page.keyboard.press("Enter")  # the picker (static/picker.js): the one match
    await page.get_by_role("button", name="Add action").click()
    await expect(page).to_have_url(f"{school.server.url}/incidents/{concern.number}#action-1")
    added = page.locator("#actions li")
    await expect(added).to_have_count(1)
    await expect(added.first.locator(".action-text")).to_have_text(ACTION_TEXT)
    await expect(added.first).to_contain_text("Alys Hughes")
    await expect(page.locator("#receipts")).to_contain_text(TA_NAME)
    await expect(page.locator("#receipts tr", has_text=TA_NAME)).to_contain_text(
        "Alerted on an action"
    )
    await snap(page, "incident-after-action", db_name)

    # Eleri's Slack DM names the concern, never what the action says or who it is about.
    await school.delivered()
    dms = school.standin.messages_for_user(TA)
    assert len(dms) == 1 and f"#{concern.number}" in dms[0]["text"]
    sent = json.dumps(dms)
    for secret_text in (ACTION_TEXT, "grandmother", NARRATIVE, concern.pupil_name):
        assert secret_text not in sent

    # The audit log shows the view, the read and the action.
    await page.get_by_role("link", name="Audit log").click()
    await expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    log = page.locator("#audit")
    for action in ("incident.view", "alert.read", "action.add", "totp.enrol", "signin.link"):
        await expect(log).to_contain_text(action)
    assert ACTION_TEXT not in await log.inner_text()
    await snap(page, "audit", db_name)


# -- 4. Blank screen ----------------------------------------------------------------------


async def test_blank_screen_hides_at_once_and_one_click_or_key_returns(
    school: Harness,
    concern: Concern,
    browser: Browser,
    context: BrowserContext,
    page: Page,
    db_name: str,
) -> None:
    await sign_in_with_link(page, school, DSL)
    await page.goto(f"/incidents/{concern.number}")
    await assert_shown(page)

    # By pointer: one click blanks, one click on the cover returns.
    await page.get_by_role("button", name="Blank screen").click()
    await assert_blanked(page)
    await snap(page, "blank", db_name, full_page=False)
    await page.locator("#blank-screen").click()
    await assert_shown(page)
    await expect(page).to_have_url(f"{school.server.url}/incidents/{concern.number}")

    # By keyboard: Enter on the control blanks; any key returns, focus back on the control.
    await page.locator("#blank-button").focus()
    await page.keyboard.press("Enter")
    await assert_blanked(page)
    await page.keyboard.press("x")
    await assert_shown(page)
    focused = await page.evaluate("document.activeElement && document.activeElement.id")
    assert focused == "blank-button"
    # Space works too, and so does Escape to return.
    await page.keyboard.press(" ")
    await assert_blanked(page)
    await page.keyboard.press("Escape")
    await assert_shown(page)

    # Still signed in: the server still answers with the concern.
    await page.reload()
    await expect(page).to_have_url(f"{school.server.url}/incidents/{concern.number}")
    await assert_shown(page)

    # Without the script (blocked, or not loaded yet) the control still works: pure CSS.
    bare = await browser.new_context(
        base_url=school.server.url,
        viewport=DESKTOP,
        java_script_enabled=False,
        storage_state=await context.storage_state(),
    )
    try:
        plain = await bare.new_page()
        await plain.goto(f"/incidents/{concern.number}")
        await assert_shown(plain)
        await plain.get_by_role("button", name="Blank screen").click()
        await assert_blanked(plain)
        await plain.locator("#blank-screen").click()
        await assert_shown(plain)
    finally:
        await bare.close()


# -- 5. the idle time-out -----------------------------------------------------------------


async def test_idle_page_blanks_itself_then_goes_to_sign_in(
    school: Harness, concern: Concern, context: BrowserContext, page: Page, db_name: str
) -> None:
    idle = int(school.settings.session_idle_minutes * 60)
    assert idle == 600  # the policy: "The system will time out every 10 minutes"
    await page.clock.install()  # the page's timers now run on Playwright's clock
    await sign_in_with_link(page, school, DSL)
    await page.goto(f"/incidents/{concern.number}")
    await assert_shown(page)
    cookie = next(c for c in await context.cookies() if c["name"] == "vigil_session")

    async def wait(seconds: int) -> None:
        """Nobody touches the page for `seconds`: on the page's clock and the server's."""
        school.clock_offset += dt.timedelta(seconds=seconds)
        await page.clock.run_for(seconds * 1000)

    await wait(idle - 65)  # 8 min 55 s: nothing yet
    await assert_shown(page)
    await expect(page.locator("#session-warning")).to_have_count(0)

    await wait(10)  # 9 min 05 s: blanked, a minute before the server's limit
    await assert_blanked(page)
    await expect(page).to_have_url(f"{school.server.url}/incidents/{concern.number}")
    await snap(page, "idle-blanked", db_name, full_page=False)

    await wait(56)  # 10 min 01 s: gone to sign-in, saying why
    await expect(page).to_have_url(f"{school.server.url}/signin?expired=1")
    await expect(page.get_by_text("Your session ended. Sign in again to continue.")).to_be_visible()
    body = await page.locator("body").inner_text()
    assert NARRATIVE not in body and concern.pupil_name not in body
    await snap(page, "expired", db_name)

    # The old session cookie is dead on the server too.
    response = await context.request.get(
        f"/incidents/{concern.number}",
        headers={"Cookie": f"vigil_session={cookie['value']}"},
        max_redirects=0,
    )
    assert response.status == 303 and response.headers["location"] == "/signin?expired=1"
    # Back does not bring the concern back from the browser's cache (no-store). (The
    # refusal above also cleared the cookie in this browser, so it is a plain sign-in.)
    await page.go_back()
    await expect(page).to_have_url(re.compile(r"/signin(\?expired=1)?$"))
    await expect(page.get_by_role("heading", name="Sign in to Vigil")).to_be_visible()
    assert NARRATIVE not in await page.locator("body").inner_text()
    # Nor does the old cookie, put back in the browser.
    await context.add_cookies([cookie])
    await page.goto(f"/incidents/{concern.number}")
    await expect(page).to_have_url(f"{school.server.url}/signin?expired=1")
    assert NARRATIVE not in await page.locator("body").inner_text()


# -- 6. access refused --------------------------------------------------------------------


async def test_staff_not_alerted_get_not_found_like_for_a_missing_concern(
    school: Harness, concern: Concern, page: Page, db_name: str
) -> None:
    await sign_in_with_link(page, school, TEACHER_3A)
    await expect(page.locator("#alerts")).to_have_count(0)  # nothing for Dylan
    await expect(page.get_by_text("You have no alerts yet.")).to_be_visible()
    await expect(page.get_by_role("link", name="Audit log")).to_have_count(0)

    seen = {}
    for path in (f"/incidents/{concern.number}", "/incidents/999"):
        response = await page.goto(path)
        assert response is not None and response.status == 404, path
        await expect(page).to_have_url(f"{school.server.url}{path}")
        await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        seen[path] = (await page.title(), await page.locator("body").inner_text())
    assert seen[f"/incidents/{concern.number}"] == seen["/incidents/999"]
    title, text = seen["/incidents/999"]
    assert title == "Not found · Vigil"
    assert NARRATIVE not in text and concern.pupil_name not in text
    assert f"#{concern.number}" not in text
    await snap(page, "not-found", db_name)


# -- 6. withdrawing access (issue 12) ---------------------------------------------------------


async def test_a_dsl_withdraws_a_teachers_access_and_they_get_not_found(
    school: Harness, concern: Concern, browser: Browser, page: Page, db_name: str
) -> None:
    hana = name_of(CLASS_TEACHER)  # the other 4B teacher, alerted as class teacher
    await sign_in_with_link(page, school, DSL)
    await page.goto(f"/incidents/{concern.number}")
    row = page.locator("#receipts tr", has_text=hana)
    await expect(row).to_contain_text("Class teacher")
    # No Withdraw beside the author or a key-holder.
    author_row = page.locator("#receipts tr", has_text="Chitra Patel")
    await expect(author_row.get_by_role("button", name="Withdraw")).to_have_count(0)
    await expect(
        page.locator("#receipts tr", has_text="Alys Hughes").get_by_role("button", name="Withdraw")
    ).to_have_count(0)
    await row.get_by_role("button", name="Withdraw").click()
    await expect(page).to_have_url(
        f"{school.server.url}/incidents/{concern.number}#receipts-heading"
    )
    await expect(page.locator("#receipts tr", has_text=hana)).to_contain_text("Withdrawn")
    await snap(page, "incident-withdrawn", db_name)

    other = await browser.new_context(base_url=school.server.url, viewport=DESKTOP)
    try:
        teacher = await other.new_page()
        await sign_in_with_link(teacher, school, CLASS_TEACHER)
        await expect(teacher.locator(f'a[href="/incidents/{concern.number}"]')).to_have_count(0)
        response = await teacher.goto(f"/incidents/{concern.number}")
        assert response is not None and response.status == 404
        await expect(teacher.get_by_role("heading", name="Not found")).to_be_visible()
    finally:
        await other.close()
    await school.delivered()
    [dm] = school.standin.messages_for_user(CLASS_TEACHER)
    updated = school.standin.messages[(school.standin.dm_channel_for(CLASS_TEACHER), dm["ts"])]
    assert "was withdrawn" in updated["text"] and concern.pupil_name not in json.dumps(updated)
