"""The browser tests' Chromium: Debian's `/usr/bin/chromium` (or `$VIGIL_CHROMIUM`) driven
by Playwright; never `playwright install`.

`tests/browser/conftest.py` declares the fixtures. Screenshots go to
`artifacts/screenshots/` under the repository (or `$VIGIL_ARTIFACTS/screenshots`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from .paths import REPO

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("VIGIL_ARTIFACTS") or REPO / "artifacts") / "screenshots"
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000  # Playwright's own default is 30 s: fail sooner


def playwright_or_skip() -> ModuleType:
    """`playwright.async_api`; without it or without Chromium, the calling test module is
    skipped, saying why. Call it at the top of a browser test module."""
    api = pytest.importorskip(
        "playwright.async_api",
        reason="the Python playwright package is not installed (pip install -e '.[dev]')",
    )
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(
        CHROMIUM
    ):
        pytest.skip(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set "
            "VIGIL_CHROMIUM); the browser tests need it",
            allow_module_level=True,
        )
    return api


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium; a skip saying why if it cannot start."""
    from playwright.async_api import async_playwright

    try:
        playwright = await async_playwright().start()
    except Exception as error:
        pytest.skip(f"Playwright's driver did not start: {type(error).__name__}: {error}")
    try:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as error:
        await playwright.stop()
        pytest.skip(f"Chromium at {CHROMIUM} did not start: {type(error).__name__}: {error}")
    try:
        yield launched
    finally:
        await launched.close()
        await playwright.stop()


async def snap(page: Page, name: str, db_name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot for people to look at: artifacts/screenshots/<name>-<db>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{db_name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path
