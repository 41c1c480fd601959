"""Logging: structured, and never a pupil's name or a narrative (DESIGN §2.1).

Vigil's own log calls pass only ids, counts and error codes. Every other logger is held
at WARNING (library DEBUG output quotes request bodies and query parameters), and
warnings that could echo a Slack payload (Bolt's "unhandled request") are filtered here.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# `testing` is the Slack stand-in's, when the demo, the tests or the privacy drill run it.
VIGIL_PACKAGES = ("bot", "handlers", "store", "scheduler", "migrations", "testing")
LIBRARIES = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "alembic",
    "slack_bolt",
    "slack_sdk",
    "aiohttp",
    "asyncio",
    "apscheduler",
)
# Bolt and the SDK may put request bodies or API arguments in these messages.
_WITHHELD_MARKERS = ("Unhandled request", "Received the following response", "Sending a request")


class WithholdPayloads(logging.Filter):
    """Replace third-party log messages that may quote a Slack payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(marker in message for marker in _WITHHELD_MARKERS) or "'value':" in message:
            record.msg = "%s (details withheld: they may contain personal data)"
            record.args = (message.split("(", 1)[0].strip()[:60],)
        return True


def configure(level: str = "INFO", fmt: str = "console") -> None:
    """Set up structlog and the standard library's logging to one stream (stderr)."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # JSON lines carry a traceback as text under "exception" (the console prints its own).
    renderers: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    handler.addFilter(WithholdPayloads())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Only Vigil's own modules may log below WARNING. Libraries' DEBUG/INFO output can
    # quote request bodies or query parameters (aiosqlite logs every query's values).
    root.setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for package in VIGIL_PACKAGES:
        logging.getLogger(package).setLevel(level)
    for library in LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)
