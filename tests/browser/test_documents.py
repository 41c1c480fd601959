"""Documents in headless Chromium, on both databases: a file attached from the incident
page's form and downloaded by its link (as an attachment, intact), a photo previewed in
the page, and a body map drawn with the mouse and with the keyboard.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from PIL import Image

from testing.harness import Harness
from tests.browser.test_web_view import DESKTOP, sign_in_with_link
from tests.support.browser import WAIT_MS, playwright_or_skip, snap
from tests.support.school import TEACHER
from tests.support.slack import file_concern

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

expect = playwright_or_skip().expect
pytestmark = pytest.mark.asyncio(loop_scope="module")

LETTER = "Letter from the school nurse about the bruise on the arm.\n" * 20


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, school: Harness) -> AsyncIterator[Page]:
    ctx = await browser.new_context(
        base_url=school.server.url, viewport=DESKTOP, accept_downloads=True
    )
    ctx.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    await file_concern(school, TEACHER)
    opened = await ctx.new_page()
    await sign_in_with_link(opened, school, TEACHER)
    yield opened
    await ctx.close()


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def test_a_file_is_attached_and_downloaded_in_the_browser(
    page: Page, tmp_path: Path, db_name: str
) -> None:
    letter = tmp_path / "nurse letter.txt"
    letter.write_text(LETTER, encoding="utf-8")
    picture = tmp_path / "arm.png"
    picture.write_bytes(photo())
    await page.goto("/incidents/1")
    for chosen in (letter, picture):
        await page.locator("#file-input").set_input_files(str(chosen))
        await page.get_by_role("button", name="Add file").click()
        await expect(page.locator("#files")).to_contain_text(chosen.name)
    preview = page.locator("img.file-preview")
    await expect(preview).to_be_visible()
    await preview.scroll_into_view_if_needed()  # previews load lazily
    await page.wait_for_function(
        "() => { const i = document.querySelector('img.file-preview');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert await preview.evaluate("img => img.naturalWidth") == 120
    await snap(page, "incident-files", db_name)
    async with page.expect_download() as info:
        await page.get_by_role("link", name="nurse letter.txt").click()
    download = await info.value
    assert download.suggested_filename == "nurse letter.txt"
    saved = tmp_path / "downloaded.txt"
    await download.save_as(saved)
    assert saved.read_text(encoding="utf-8") == LETTER


async def test_a_body_map_is_drawn_with_the_mouse_and_the_keyboard(
    page: Page, db_name: str
) -> None:
    await page.goto("/incidents/1")
    await page.get_by_role("link", name="Add a body map").click()
    await expect(page.locator("#bodymap-guidance")).to_contain_text("Do not examine")
    front = page.locator("#figure-front")
    box = await front.bounding_box()
    assert box is not None
    # The mouse: a click on the front figure's left upper arm (viewer's right).
    await page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.32)
    await expect(page.locator("#bodymap-status")).to_contain_text("Mark 1 placed on the front")
    await expect(page.locator("#mark-1-type")).to_be_focused()
    await page.locator("#mark-1-type").select_option("bruise")
    await page.locator("#mark-1-size").select_option("2 to 5 cm")
    await page.locator("#mark-1-note").fill("Four small round marks, like fingertips.")
    # The keyboard: Tab to the back figure, move the pointer, Enter.
    await page.locator("#figure-back").focus()
    for key in ("ArrowLeft", "ArrowLeft", "Shift+ArrowUp", "Enter"):
        await page.keyboard.press(key)
    await expect(page.locator("#bodymap-status")).to_contain_text("Mark 2 placed on the back")
    assert await page.locator('input[name="mark-2-x"]').input_value() == "90"
    assert await page.locator('input[name="mark-2-y"]').input_value() == "180"
    await page.locator("#mark-2-type").select_option("scratch")
    await page.locator("#mark-2-size").select_option("under 1 cm")
    await snap(page, "body-map-form", db_name)
    await page.get_by_role("button", name="Save body map").click()
    saved = page.locator("section.bodymap-saved")
    await expect(saved).to_contain_text("2 marks")
    await expect(saved).to_contain_text("Four small round marks, like fingertips.")
    await expect(saved.locator(".bodymap-mark")).to_have_count(2)
    await snap(page, "incident-body-map", db_name)
