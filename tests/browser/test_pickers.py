"""The staff and category pickers in a real browser (headless Chromium, Playwright), on
both databases, driven by the keyboard only; and the same forms with JavaScript off.

With `static/picker.js`, each `<select data-picker>` becomes a combobox with a listbox and
removable chips (WAI-ARIA combobox pattern). The DSL alerts two colleagues by typing part
of their names, arrowing and pressing Enter, removes a third with Backspace and another
chip with Delete, re-categorises and shares the concern, and filters the caseload by who
recorded it, all with keys; what reaches the server is the `<select>`'s own field, so the
alerts, the categories and the invitation are the ones picked. Without JavaScript, the
native `<select>` is the control and the same forms submit the same fields.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from sqlalchemy import select

from handlers.web.security import cookie_name
from store.models import Alert, Incident, IncidentInvite
from testing.harness import Harness
from tests.support.browser import WAIT_MS, playwright_or_skip, snap
from tests.support.records import staff_member
from tests.support.school import DSL, OFFICE, TA, TEACHER, TEACHER_3A, name_of
from tests.support.slack import file_concern
from tests.support.web import sign_in

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

expect = playwright_or_skip().expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

ELERI, IWAN, DYLAN = name_of(TA), name_of(OFFICE), name_of(TEACHER_3A)


async def page_for(browser: Browser, school: Harness, *, javascript: bool) -> AsyncIterator[Page]:
    """A browser signed in as the DSL, with or without JavaScript."""
    user = await sign_in(school, DSL, remember=True)
    name = cookie_name(school.server.web_deps)
    cookie = next(c for c in user.http.cookie_jar if c.key == name)
    await user.close()
    context = await browser.new_context(
        base_url=school.server.url, locale="en-GB", java_script_enabled=javascript
    )
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    await context.add_cookies([{"name": name, "value": cookie.value, "url": school.server.url}])
    yield await context.new_page()
    await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def filed(school: Harness) -> Harness:
    await file_concern(school)  # #1, for the keyboard
    await file_concern(school)  # #2, for the page without JavaScript
    return school


async def picked(school: Harness, number: int) -> tuple[set[str], set[str]]:
    """On concern `number`: who of Eleri, Iwan and Dylan was alerted on an action, and
    who was invited (shared with), by name."""
    ids = {(await staff_member(school, s)).id: name_of(s) for s in (TA, OFFICE, TEACHER_3A)}
    async with school.server.factory() as session:
        incident = (
            await session.execute(select(Incident.id).where(Incident.number == number))
        ).scalar_one()
        alerted = (
            await session.execute(
                select(Alert.recipient_id).where(
                    Alert.incident_id == incident, Alert.action_id.is_not(None)
                )
            )
        ).scalars()
        invited = (
            await session.execute(
                select(IncidentInvite.staff_id).where(IncidentInvite.incident_id == incident)
            )
        ).scalars()
        return {ids[i] for i in alerted if i in ids}, {ids[i] for i in invited if i in ids}


async def choose(page: Page, typed: str, name: str) -> None:
    """Type part of a name in the focused combobox, arrow down to `name`, press Enter."""
    box = page.locator(":focus")
    await page.keyboard.type(typed)
    await expect(box).to_have_attribute("aria-expanded", "true")
    for _ in range(20):
        active = await box.get_attribute("aria-activedescendant")
        if active and (await page.locator(f"#{active}").inner_text()).strip() == name:
            break
        await page.keyboard.press("ArrowDown")
    else:
        raise AssertionError(f"{name} is not offered after typing {typed!r}")
    await page.keyboard.press("Enter")
    await expect(box).to_have_attribute("aria-expanded", "false")
    await expect(box).to_have_value("")


async def test_a_dsl_alerts_recategorises_and_shares_with_the_keyboard_only(
    filed: Harness, browser: Browser, db_name: str
) -> None:
    school = filed
    errors: list[str] = []  # the script runs under the CSP (script-src 'self'), no errors
    async for page in page_for(browser, school, javascript=True):
        page.on(
            "console",
            lambda m: (
                errors.append(f"{m.text} {m.location.get('url')}")
                if m.type == "error" and "favicon" not in str(m.location.get("url"))
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto("/incidents/1")
        form = page.locator("#add-action")
        await form.get_by_label("Action", exact=True).focus()
        await page.keyboard.type("Spoke to the office and the TA; both will keep an eye out.")

        # Tab reaches the "Also alert" combobox: labelled, collapsed, controlling a listbox.
        await page.keyboard.press("Tab")
        box = page.get_by_role("combobox", name="Also alert (optional)")
        await expect(box).to_be_focused()
        await expect(box).to_have_attribute("aria-expanded", "false")
        listbox_id = await box.get_attribute("aria-controls")
        listbox = page.locator(f"#{listbox_id}")
        await expect(listbox).to_have_attribute("role", "listbox")
        await expect(listbox).to_have_attribute("aria-multiselectable", "true")
        await expect(listbox).to_be_hidden()
        await expect(page.locator("#action-alert")).to_be_hidden()  # the native control
        status = page.locator("#action-alert-picker-status")
        await expect(status).to_have_attribute("aria-live", "polite")
        await expect(page.locator("#alert-hint")).not_to_contain_text(
            "Hold Ctrl", use_inner_text=True
        )  # that is about the native list

        # Typing filters; the highlighted option is the active descendant.
        await page.keyboard.type("ele")
        await expect(listbox).to_be_visible()
        options = listbox.get_by_role("option")
        await expect(options.filter(visible=True)).to_have_count(1)
        await expect(options.filter(visible=True).first).to_have_text(ELERI)
        active = await box.get_attribute("aria-activedescendant")
        assert active and await page.locator(f"#{active}").inner_text() == ELERI
        await snap(page, "picker-open", db_name, full_page=False)
        await page.keyboard.press("Escape")  # closes the list, keeps the text
        await expect(box).to_have_attribute("aria-expanded", "false")
        assert await box.get_attribute("aria-activedescendant") is None
        await page.keyboard.press("Escape")  # then clears the text
        await expect(box).to_have_value("")

        await choose(page, "e", ELERI)  # "e" matches nearly everyone: arrow to her
        await expect(status).to_have_text(f"{ELERI} added, 1 selected")
        await choose(page, "re", IWAN)
        await expect(status).to_have_text(f"{IWAN} added, 2 selected")
        await choose(page, "dyl", DYLAN)
        await expect(status).to_have_text(f"{DYLAN} added, 3 selected")
        chips = page.locator("#action-alert-picker-chips").get_by_role("button")
        chosen = chips.locator("span:not([aria-hidden])")  # the names, without the ×
        await expect(chosen).to_have_text([ELERI, IWAN, DYLAN])
        await expect(chips.first).to_have_accessible_name(f"Remove {ELERI}")
        # The picked show as selected in the list.
        await page.keyboard.press("ArrowDown")
        await expect(listbox.get_by_role("option", name=ELERI)).to_have_attribute(
            "aria-selected", "true"
        )
        await page.keyboard.press("Escape")

        # Backspace in the empty box removes the last picked; Delete on a chip removes it.
        await page.keyboard.press("Backspace")
        await expect(status).to_have_text(f"{DYLAN} removed, 2 selected")
        await expect(chosen).to_have_text([ELERI, IWAN])
        await choose(page, "dyl", DYLAN)
        await page.keyboard.press("Shift+Tab")  # back onto the last chip
        await expect(chips.last).to_have_accessible_name(f"Remove {DYLAN}")
        await expect(chips.last).to_be_focused()
        await page.keyboard.press("Delete")
        await expect(status).to_have_text(f"{DYLAN} removed, 2 selected")
        await expect(chosen).to_have_text([ELERI, IWAN])
        await expect(chips.last).to_be_focused()  # focus stays among the chips
        await expect(page.locator("#action-alert option:checked")).to_have_text([ELERI, IWAN])

        # Re-categorise (the next picker along), then submit with Enter on the button.
        await page.keyboard.press("Tab")
        await expect(box).to_be_focused()
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("combobox", name="Re-categorise (optional)")).to_be_focused()
        await choose(page, "well", "Well-being")
        await choose(page, "atten", "Attendance")
        await snap(page, "pickers", db_name)
        await form.get_by_role("button", name="Add action").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#actions li")).to_have_count(1)
        await expect(page.locator("#categories .current")).to_have_text("Attendance, Well-being")

        # Share with Dylan: a single picker; Enter chooses, the button shares.
        await page.wait_for_load_state()  # the script has made the pickers
        share = page.get_by_role("combobox", name="Colleague")
        await expect(share).to_have_attribute("aria-controls", "invite-staff-picker-listbox")
        await share.focus()
        await expect(share).to_have_attribute("aria-required", "true")
        await choose(page, "evan", DYLAN)
        await expect(page.locator("#invite-staff-picker-status")).to_have_text(f"{DYLAN} chosen")
        await page.locator("#invite-form").get_by_role("button", name="Share").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#receipts")).to_contain_text(DYLAN)

        # A filter is a single picker too: the caseload by who recorded the concern.
        await page.goto("/caseload")
        author = page.get_by_role("combobox", name="Recorded by")
        await author.focus()
        await choose(page, "pat", name_of(TEACHER))
        await page.keyboard.press("Shift+Tab")  # onto her chip, then back
        await expect(page.get_by_role("button", name=f"Remove {name_of(TEACHER)}")).to_be_focused()
        await page.keyboard.press("Tab")
        await page.locator("#caseload-filter").get_by_role("button", name="Filter").focus()
        await page.keyboard.press("Enter")
        chitra = await staff_member(school, TEACHER)
        await expect(page).to_have_url(re.compile(rf"[?&]author={chitra.id}(&|$)"))
        await expect(page.locator("#caseload tbody tr")).to_have_count(2)
        assert errors == []

    assert await picked(school, 1) == ({ELERI, IWAN}, {DYLAN})
    await school.delivered()
    for person in (TA, OFFICE, TEACHER_3A):  # Eleri and Iwan alerted, Dylan shared with
        dms = school.standin.messages_for_user(person)
        assert len(dms) == 1 and "#1" in dms[0]["text"], (person, dms)


async def test_the_same_forms_work_without_javascript(
    filed: Harness, browser: Browser, db_name: str
) -> None:
    school = filed
    async for page in page_for(browser, school, javascript=False):
        await page.goto("/incidents/2")
        await expect(page.locator(".picker, input[role=combobox]")).to_have_count(0)
        alert = page.get_by_label("Also alert (optional)")
        await expect(alert).to_be_visible()
        await expect(page.locator("#alert-hint")).to_contain_text("Hold Ctrl")
        await page.get_by_label("Action", exact=True).fill("Told the office.")
        await alert.select_option(label=[IWAN, DYLAN])
        await page.get_by_label("Re-categorise (optional)").select_option(["Medical"])
        await page.get_by_role("button", name="Add action").click()
        await expect(page.locator("#actions li")).to_have_count(1)
        await expect(page.locator("#categories .current")).to_have_text("Medical")
        await page.get_by_label("Colleague", exact=True).select_option(label=ELERI)
        await page.get_by_role("button", name="Share").click()
        await expect(page.locator("#receipts")).to_contain_text(ELERI)
        await snap(page, "pickers-no-js", db_name)
    assert await picked(school, 2) == ({IWAN, DYLAN}, {ELERI})
    await school.delivered()
    assert ["#2" in m["text"] for m in school.standin.messages_for_user(TA)] == [True]
