"""`vigil privacy-check --exercise`: run the drill on a throwaway database and search
every Slack call the stand-in received, every answer Vigil gave Slack, every log record
Vigil emits at DEBUG and a raw dump of every table for the drill's made-up values.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, table

from privacy.drill import ALERT_CHANNEL, Drill
from privacy.matching import Matcher
from privacy.report import PrivacyCheckError, Report
from privacy.seeds import Seeds
from privacy.sources import (
    read_only,
    search_database,
    search_log_records,
    search_slack_answers,
    search_slack_calls,
    table_shapes,
    vigil_logging_captured,
)
from store import migrate
from store.db import create_engine, is_sqlite
from testing.harness import Harness
from testing.standin import RecordedCall


async def _prepare(url: str) -> None:
    """Refuse a database holding any data (the exercise never touches a school's records),
    then create the schema."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            for shape in await table_shapes(connection):
                if shape.name == "alembic_version":
                    continue
                rows = await connection.scalar(select(func.count()).select_from(table(shape.name)))
                if rows:
                    raise PrivacyCheckError(
                        f"the database given holds data (table {shape.name}); "
                        "the exercise needs an empty database"
                    )
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def _exercise_overrides(directory: Path) -> dict[str, Any]:
    """Settings that make the drill the same wherever it runs (the environment aside)."""
    config = directory / "vigil.toml"
    config.write_text("# the defaults\n", encoding="utf-8")
    return {
        "VIGIL_CONFIG": str(config),
        "VIGIL_ALERT_CHANNEL": ALERT_CHANNEL,
        "VIGIL_COMMAND": "/concern",
        "VIGIL_CATEGORIES": None,
        "VIGIL_RESTRICTED_CATEGORIES": "Safeguarding;Child protection",
        "VIGIL_HOST": "127.0.0.1",
        "VIGIL_LOG_LEVEL": "DEBUG",
        "SLACK_APP_TOKEN": None,
    }


async def _run_drill(url: str, seeds: Seeds, directory: Path) -> tuple[Drill, list[RecordedCall]]:
    """Start the server and the stand-in on `url`, run the drill, stop them."""
    harness = Harness(
        database_url=url,
        overrides=_exercise_overrides(directory),
        worker_options={"poll_interval": 0.05, "base_backoff": 0.01},
    )
    await harness.start()
    try:
        drill = Drill(harness, seeds, directory)
        await drill.run()
    finally:
        await harness.close()
    return drill, harness.standin.calls


async def run_exercise(database_url: str | None = None) -> Report:
    """Run the drill on a throwaway database and search what it left behind.

    `database_url` names an empty database to use (e.g. PostgreSQL); by default a
    temporary SQLite file is made and removed afterwards.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vigil-privacy-") as scratch:
        directory = Path(scratch)
        url = database_url or f"sqlite+aiosqlite:///{directory / 'privacy-check.db'}"
        await _prepare(url)
        seeds = Seeds()
        seeds.add_pupils(("4B", "4B", "3A", "5C", "2A", "R1"), with_preferred=(0, 2))
        with vigil_logging_captured() as (capture, written):
            drill, calls = await _run_drill(url, seeds, directory)
        report = Report(
            title=f"Vigil privacy check: the exercise ({len(drill.flows)} flows on a "
            f"throwaway {'SQLite' if is_sqlite(url) else 'PostgreSQL'} database)",
            looked_for=f"the names of {len(seeds.pupils)} made-up pupils (allowed only in "
            "the pupils table and the pupil typeahead) and "
            f"{len([n for n in seeds.needles if not n.allowed_in])} made-up phrases written "
            "in narratives, reasons, actions and referral notes (allowed nowhere), and the "
            "typed name of an adult an allegation is about (allowed only in the adult picker)",
        )
        matcher = Matcher(seeds.needles)
        search_slack_calls(calls, matcher, report)
        search_slack_answers(drill.answers, matcher, report)
        search_log_records(capture.records, matcher, report)
        report.searched.log_lines_written = len(written.getvalue().splitlines())
        engine = create_engine(url)
        try:
            async with read_only(engine) as connection:
                await search_database(connection, matcher, report, words=Matcher(seeds.words))
        finally:
            await engine.dispose()
    report.notes.append(f"flows run: {', '.join(drill.flows)} ({time.monotonic() - started:.1f} s)")
    if database_url:
        report.notes.append("the drill's made-up records stay in the database given")
    return report
