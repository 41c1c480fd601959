"""Where the privacy check searches: Slack calls and answers, log records and files, tables.

Each ``search_*`` function feeds what it finds to a :class:`~privacy.report.Report` and
counts what it searched, so a pass is seen to mean something.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import column, inspect, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import logs
from privacy.matching import SEARCH_TABLES, Matcher, texts_of
from privacy.report import Report

if TYPE_CHECKING:
    from testing.standin import RecordedCall

BATCH = 1000


@dataclass(frozen=True)
class SlackAnswer:
    """What Vigil answered to one request from Slack (`kind`: slash command, ...)."""

    kind: str
    body: str


def search_slack_calls(calls: Iterable[RecordedCall], matcher: Matcher, report: Report) -> None:
    """Every Slack Web API call the stand-in received: its arguments and its answer."""
    for call in calls:
        report.searched.slack_calls += 1
        for part, data in (("arguments", call.params), ("answer", call.response)):
            views = [json.dumps(data, default=str, ensure_ascii=False), *texts_of(data)]
            found = matcher.find_all(views)
            report.found(found, where="slack", location=f"{call.method} ({part})")


def search_slack_answers(answers: Iterable[SlackAnswer], matcher: Matcher, report: Report) -> None:
    """Every answer Vigil gave to Slack's own requests (commands, modals, buttons...)."""
    for answer in answers:
        report.searched.slack_answers += 1
        report.found(
            matcher.find_all(texts_of(answer.body)),
            where="slack",
            location=f"Vigil's answer to a {answer.kind}",
            place=answer.kind,
        )


@dataclass(frozen=True)
class CapturedRecord:
    """A log record as text: the line Vigil writes, its message, arguments and exception."""

    logger: str
    level: str
    texts: tuple[str, ...]


class LogCapture(logging.Handler):
    """Keeps the text of every record that reaches the root logger: as each of Vigil's
    log formats writes it (the console one prints tracebacks), and its raw parts."""

    def __init__(self, formatters: Sequence[logging.Formatter]) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[CapturedRecord] = []
        self._formats = list(formatters)

    def emit(self, record: logging.LogRecord) -> None:
        texts: list[str] = []
        for formatter in self._formats:
            with contextlib.suppress(Exception):
                texts.append(formatter.format(record))
        texts += texts_of(record.msg if isinstance(record.msg, Mapping) else str(record.msg))
        texts += texts_of(record.args)
        with contextlib.suppress(Exception):
            texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
        texts += [t for t in (record.exc_text, record.stack_info) if t]
        self.records.append(CapturedRecord(record.name, record.levelname, tuple(texts)))


@contextlib.contextmanager
def vigil_logging_captured() -> Iterator[tuple[LogCapture, io.StringIO]]:
    """Vigil's own logging set-up at DEBUG, written to a buffer instead of stderr, with a
    handler on the root logger that keeps every record in both of Vigil's formats;
    everything is put back afterwards. Libraries stay held at WARNING, as `vigil serve`
    holds them."""
    root = logging.getLogger()
    names = (*logs.VIGIL_PACKAGES, *logs.LIBRARIES)
    saved_levels = {name: logging.getLogger(name).level for name in names}
    saved = (root.handlers[:], root.level, structlog.is_configured(), structlog.get_config())
    written = io.StringIO()
    try:
        formats = []
        for fmt in ("json", "console"):  # the last one stays installed
            logs.configure("DEBUG", fmt)
            formats.append(root.handlers[0].formatter)
        vigil_handler = root.handlers[0]
        assert isinstance(vigil_handler, logging.StreamHandler)
        vigil_handler.setStream(written)
        capture = LogCapture([f for f in formats if f is not None])
        root.addHandler(capture)
        yield capture, written
    finally:
        handlers, level, was_configured, config = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in saved_levels.items():
            logging.getLogger(name).setLevel(old)
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**config)


def search_log_records(records: Iterable[CapturedRecord], matcher: Matcher, report: Report) -> None:
    """Every captured record, in every form it has."""
    for record in records:
        report.searched.log_records += 1
        report.found(
            matcher.find_all(record.texts),
            where="log",
            location=f"logger {record.logger} ({record.level})",
        )


def search_log_file(path: Path, matcher: Matcher, report: Report) -> None:
    """A log file, line by line (JSON lines are decoded as well)."""
    report.searched.log_files += 1
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            report.searched.log_file_lines += 1
            report.found(
                matcher.find_all(texts_of(line)),
                where="log file",
                location=str(path),
                example=f"line {number}",
            )


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[str, ...]
    key: str | None  # the single primary-key column, named in examples when it is a number


def _table_shapes(connection: Connection) -> list[TableShape]:
    inspector = inspect(connection)
    shapes = []
    for name in sorted(inspector.get_table_names()):
        columns = tuple(str(c["name"]) for c in inspector.get_columns(name))
        key = inspector.get_pk_constraint(name).get("constrained_columns") or []
        shapes.append(TableShape(name, columns, key[0] if len(key) == 1 else None))
    return shapes


async def table_shapes(connection: AsyncConnection) -> list[TableShape]:
    """Every table in the database (the default schema) and its columns."""
    return await connection.run_sync(_table_shapes)


async def raw_rows(connection: AsyncConnection, shape: TableShape) -> AsyncIterator[Sequence[Any]]:
    """Every row of a table, every column as the database driver returns it, in batches."""
    query = select(*(column(name) for name in shape.columns)).select_from(table(shape.name))
    async for row in stream_rows(connection, query):
        yield row


async def search_database(
    connection: AsyncConnection, matcher: Matcher, report: Report, *, words: Matcher | None = None
) -> None:
    """A raw dump of every table: each value of each row, as text. The narrative search's
    tables (`SEARCH_TABLES`) are also searched for each single word (`words`)."""
    for shape in await table_shapes(connection):
        report.searched.tables += 1
        key_index = shape.columns.index(shape.key) if shape.key else None
        matchers = [matcher]
        if words is not None and shape.name in SEARCH_TABLES:
            matchers.append(words)
        async for row in raw_rows(connection, shape):
            report.searched.rows += 1
            views = [list(texts_of(value, dates=True)) for value in row]
            for using in matchers:
                if not using.find_all(text for texts in views for text in texts):
                    continue
                key = row[key_index] if key_index is not None else None
                example = f"{shape.key} {key}" if isinstance(key, int) else None
                for name, texts in zip(shape.columns, views, strict=True):
                    report.found(
                        using.find_all(texts),
                        where="database",
                        location=f"{shape.name}.{name}",
                        place=shape.name,
                        example=example,
                    )


FILE_CHUNK = 1 << 20
FILE_OVERLAP = 4096  # a value split between two chunks is still found whole


def search_sqlite_file(path: Path, matcher: Matcher, report: Report) -> int:
    """The SQLite database file and its write-ahead log, byte by byte (read as UTF-8 and
    as Latin-1): what a copy of the file shows, free pages and old log frames included.
    How many bytes were searched."""
    searched = 0
    for part in (path, path.with_name(path.name + "-wal")):
        if not part.is_file():
            continue
        with part.open("rb") as handle:
            tail = b""
            while chunk := handle.read(FILE_CHUNK):
                data = tail + chunk
                searched += len(chunk)
                texts = [data.decode("utf-8", errors="replace"), data.decode("latin-1")]
                report.found(
                    matcher.find_all(texts),
                    where="database file",
                    location=part.name,
                    place="file",
                )
                tail = data[-FILE_OVERLAP:]
    return searched


@contextlib.asynccontextmanager
async def read_only(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection that cannot change the database."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = await connection.execution_options(postgresql_readonly=True)
        else:
            await connection.exec_driver_sql("PRAGMA query_only = ON")
        try:
            yield connection
        finally:
            await connection.rollback()
            if engine.dialect.name == "sqlite":
                await connection.exec_driver_sql("PRAGMA query_only = OFF")


async def stream_rows(connection: AsyncConnection, query: Any) -> AsyncIterator[Sequence[Any]]:
    """The rows of `query`, fetched `BATCH` at a time."""
    result = await connection.stream(query)
    async for rows in result.partitions(BATCH):
        for row in rows:
            yield tuple(row)
