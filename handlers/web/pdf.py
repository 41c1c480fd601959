"""A4 PDFs of printed pages (the chronology), made with WeasyPrint, which fetches nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PRINT_CSS = HERE / "static" / "print.css"
PDF_SLOTS = threading.BoundedSemaphore(2)  # PDFs rendered at once (each takes a core)


class PdfUnavailable(Exception):
    """WeasyPrint cannot load here (it needs Pango: see the README)."""


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
    """An A4 PDF of the document (blocking: run it in a thread)."""
    try:
        import weasyprint  # imported on first use: it takes a moment to load
    except (ImportError, OSError) as error:
        raise PdfUnavailable(str(error)[:100]) from None

    with PDF_SLOTS:
        # Only inline `data:` images (previews of attached photos) are read; nothing is fetched.
        fetcher_class = getattr(weasyprint, "URLFetcher", None)
        fetcher = fetcher_class(allowed_protocols={"data"}) if fetcher_class else _refuse_fetch
        document = weasyprint.HTML(string=html, url_fetcher=fetcher, media_type="print")
        return document.write_pdf(stylesheets=[weasyprint.CSS(filename=str(PRINT_CSS))])
