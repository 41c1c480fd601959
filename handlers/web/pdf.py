"""A4 PDFs of printed pages (the chronology), made with WeasyPrint, which fetches nothing.

A PDF takes a core for a moment: they are made off the event loop, in a pool of their own
(`POOL`: two at a time, a few more waiting), so forty asked for at once neither stall
other requests nor fill the threads the rest of the server shares; beyond that the
asker is told to try again shortly (`PdfBusy`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PRINT_CSS = HERE / "static" / "print.css"


class PdfUnavailable(Exception):
    """WeasyPrint cannot load here (it needs Pango: see the README)."""


class PdfBusy(Exception):
    """As many PDFs as the pool takes are being made or waiting: try again shortly."""


class PdfPool:
    """`workers` threads making PDFs; at most `waiting` more queued behind them."""

    def __init__(self, *, workers: int = 2, waiting: int = 6) -> None:
        self.workers = workers
        self.limit = workers + waiting  # PDFs being made or queued, at most
        self.in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-pdf")

    async def make(self, html: str) -> bytes:
        """The PDF of `html`, made in the pool; PdfBusy when it is full."""
        if self.in_flight >= self.limit:
            raise PdfBusy
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, render_pdf, html
            )
        finally:
            self.in_flight -= 1


def _refuse_fetch(url: str, *_args: Any, **_kwargs: Any) -> Any:
    """WeasyPrint fetches nothing: the stylesheet is handed over, and there is nothing else."""
    raise ValueError(f"not fetched: {url[:40]}")


def pdf_support() -> str | None:
    """Why PDFs cannot be made on this machine, or None when they can."""
    try:
        import weasyprint  # noqa: F401 - loading it is the check
    except (ImportError, OSError) as error:
        return f"WeasyPrint cannot load ({type(error).__name__}); it needs Pango: see the README"
    return None


def render_pdf(html: str) -> bytes:
    """An A4 PDF of the document (blocking: `POOL.make` runs it in the pool)."""
    try:
        import weasyprint  # imported on first use: it takes a moment to load
    except (ImportError, OSError) as error:
        raise PdfUnavailable(str(error)[:100]) from None

    # Only inline `data:` images (previews of attached photos) are read; nothing is fetched.
    fetcher_class = getattr(weasyprint, "URLFetcher", None)
    fetcher = fetcher_class(allowed_protocols={"data"}) if fetcher_class else _refuse_fetch
    document = weasyprint.HTML(string=html, url_fetcher=fetcher, media_type="print")
    return document.write_pdf(stylesheets=[weasyprint.CSS(filename=str(PRINT_CSS))])


POOL = PdfPool()
