"""The browser tests' fixtures: one headless Chromium per module (`tests/support/browser.py`).

`harness` and `school` are the root conftest's, redeclared on the module's event loop:
the server has to run on the loop the browser and the tests use. Each module marks its
tests `pytest.mark.asyncio(loop_scope="module")`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from testing.harness import Harness
from tests.support.browser import chromium
from tests.support.school import server

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest_asyncio.fixture(loop_scope="module")
async def harness(db_url: str) -> AsyncIterator[Harness]:
    async with server(db_url) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def school(harness: Harness, tmp_path: Path) -> Harness:
    await harness.seed_school(tmp_path)
    return harness


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module; a skip saying why if it cannot start."""
    async with chromium() as launched:
        yield launched


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    """Which database this run of the test uses: sqlite or postgresql."""
    return str(request.node.callspec.params["db_url"])
