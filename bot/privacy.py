"""`vigil privacy-check`: look for pupils' names and narratives where they must not be.

DESIGN §2.1: a Slack message, log line or error names at most the incident number, the
author, the categories, a referral's agency and how overdue it is; pupils' names live only
in the `pupils` table and narratives, parents-not-contacted reasons and action text are
stored only encrypted. Two ways to check it:

- `run_exercise` (`vigil privacy-check --exercise`): on a throwaway database (never a
  school's data), import pupils with made-up names, run every flow through the real server
  against the Slack stand-in with texts carrying made-up phrases, then search every Slack
  call the stand-in received, every answer Vigil gave Slack, every log record Vigil emits
  at DEBUG and a raw dump of every table.
- `check_school` (`vigil privacy-check`): read a school's own database without changing
  it, take every pupil's full name and every stored text (decrypted with the configured
  key), and search a raw dump of every table (and any log files named) for them.

Reports name what was found and where, never the value found.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import io
import json
import logging
import re
import secrets
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import column, event, func, inspect, select, table
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import logs
from bot.settings import Settings
from bot.slack_lookup import make_slack_lookup
from handlers.concern_modal import PUPIL_SEARCH
from store import migrate, roster
from store.crypto import Cipher, DecryptionError
from store.db import create_engine, is_sqlite
from store.messages import MARK_READ_ACTION, OPEN_ACTION, SNOOZE_ACTION
from store.models import Incident, IncidentAction, Pupil, Referral, Staff
from testing.harness import Harness
from testing.school import STAFF, DemoPupil, pupils_csv, staff_csv
from testing.simulator import SlackResponse
from testing.standin import RecordedCall
from testing.webclient import WebUser

PUPILS_TABLE = "pupils"
TYPEAHEAD = "pupil typeahead"  # Slack shows the names Vigil offers there, by design
WINDOW = 48  # a long stored text is looked for by its opening and closing words
MIN_TEXT = 12  # shorter stored texts ("Phoned mum.") are too common to look for
BATCH = 1000
MAX_LINES = 60

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_SKIPPED_TYPES = (bool, int, float, Decimal, dt.date, dt.time, dt.timedelta)


class PrivacyCheckError(Exception):
    """The check could not run; the message says why (and never holds personal data)."""


# -- what is looked for, and finding it -------------------------------------------------------


def _without_marks(run: re.Match[str]) -> str:
    return "".join(c for c in run.group() if not unicodedata.combining(c))


def normalise(text: str) -> str:
    """Text as compared: case- and accent-free (as `store.pupils.fold` folds for the pupil
    search, looking only at the non-ASCII parts) and one space for any run of whitespace."""
    if text.isascii():
        folded = text.casefold()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        folded = _NON_ASCII.sub(_without_marks, decomposed).casefold()
    return _SPACE.sub(" ", folded)


@dataclass(frozen=True)
class Needle:
    """A value that must not be found, with a label for the report that does not reveal it.

    `allowed_in` names the places it may appear: a table name, or `TYPEAHEAD`.
    """

    text: str  # normalised
    kind: str  # e.g. "pupil name (pupil 3)", "narrative of incident id 7"
    allowed_in: frozenset[str] = frozenset()


def name_needles(
    *, forename: str, surname: str, preferred_name: str | None, label: str, whole_only: bool
) -> list[Needle]:
    """What a pupil's name looks like in text. `whole_only` keeps only full names (for a
    real roster, where a single forename such as "May" is an ordinary word)."""
    forms = [f"{forename} {surname}", f"{surname}, {forename}"]
    if preferred_name:
        forms += [f"{preferred_name} {surname}", f"{forename} ({preferred_name}) {surname}"]
    if not whole_only:
        forms += [forename, surname, *([preferred_name] if preferred_name else [])]
    allowed = frozenset({PUPILS_TABLE, TYPEAHEAD})
    texts = dict.fromkeys(normalise(form).strip() for form in forms if form.strip())
    return [Needle(text, f"pupil name ({label})", allowed) for text in texts if text]


def text_needles(text: str, *, kind: str) -> list[Needle]:
    """A stored text as it would appear if leaked: whole, or (when long) its opening and
    closing words, so a truncated copy is found too. Very short texts are skipped."""
    words = normalise(text).split()
    flat = " ".join(words)
    if len(flat) < MIN_TEXT:
        return []
    if len(flat) <= WINDOW:
        return [Needle(flat, kind)]
    return [Needle(" ".join(part), kind) for part in (_head(words), _head(words[::-1])[::-1])]


def _head(words: Sequence[str]) -> list[str]:
    """The fewest leading words that make at least `WINDOW` characters."""
    taken: list[str] = []
    for word in words:
        taken.append(word)
        if len(" ".join(taken)) >= WINDOW:
            break
    return taken


class Matcher:
    """Finds many needles in many texts without trying every needle on every text.

    Each needle is indexed by one of its words (its "anchor": a long word, preferring one
    inside the needle, spreading needles over anchors). A text's words are intersected
    with the anchors (a set operation), and only the needles of the anchors present are
    compared with the text. A needle is therefore found where it occurs with its anchor
    as a whole word, which is how a name or a sentence appears in a message or a row.
    """

    def __init__(self, needles: Iterable[Needle]) -> None:
        self._by_anchor: dict[str, list[Needle]] = {}
        self._unanchored: list[Needle] = []
        for needle in needles:
            words = _WORD.findall(needle.text)
            if not words:
                self._unanchored.append(needle)
                continue
            inner = words[1:-1] if len(words) >= 3 else words
            anchor = min(inner, key=lambda w: (-min(len(w), 8), len(self._by_anchor.get(w, ()))))
            self._by_anchor.setdefault(anchor, []).append(needle)
        self._anchors = frozenset(self._by_anchor)

    def find(self, text: str) -> set[Needle]:
        """The needles that occur in `text`."""
        plain = normalise(text)
        found = {n for n in self._unanchored if n.text in plain}
        for anchor in self._anchors.intersection(_WORD.findall(plain)):
            found.update(n for n in self._by_anchor[anchor] if n.text in plain)
        return found

    def find_all(self, texts: Iterable[str]) -> set[Needle]:
        """The needles that occur in any of `texts` (one search over them all first)."""
        texts = list(texts)
        if not texts or not self.find("\x00".join(texts)):
            return set()
        return set().union(*(self.find(text) for text in texts))


def texts_of(value: Any, *, depth: int = 0) -> Iterator[str]:
    """Every way `value` could be read as text: itself, and decoded (JSON inside a string,
    URL- and HTML-escaped text, bytes as UTF-8 and, if not UTF-8, as Latin-1).

    Searching the decoded bytes finds whatever searching their hex dump would.
    """
    if value is None or isinstance(value, _SKIPPED_TYPES) or depth > 6:
        return
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            yield from _string_views(raw.decode("utf-8"), depth)
        except UnicodeDecodeError:
            yield from _string_views(raw.decode("utf-8", errors="replace"), depth)
            yield raw.decode("latin-1")
    elif isinstance(value, str):
        yield from _string_views(value, depth)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from texts_of(key, depth=depth + 1)
            yield from texts_of(item, depth=depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from texts_of(item, depth=depth + 1)
    else:
        yield str(value)


def _string_views(text: str, depth: int) -> Iterator[str]:
    yield text
    if text.lstrip()[:1] in ("{", "[", '"'):
        try:
            decoded = json.loads(text)
        except ValueError:
            pass
        else:
            yield from texts_of(decoded, depth=depth + 1)
    if "%" in text or "+" in text:
        unquoted = unquote_plus(text)
        if unquoted != text:
            yield unquoted
    if "&" in text:
        unescaped = html.unescape(text)
        if unescaped != text:
            yield unescaped


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One kind of value found in one place: `<where>: <kind> found in <location>`."""

    where: str  # slack, log, log file, database
    kind: str
    location: str


@dataclass
class Searched:
    """How much was searched, for the report (so a pass is seen to mean something)."""

    slack_calls: int = 0
    slack_answers: int = 0
    log_records: int = 0
    log_lines_written: int = 0
    log_files: int = 0
    log_file_lines: int = 0
    tables: int = 0
    rows: int = 0


@dataclass
class Report:
    """The outcome of a check: what was looked for, what was searched, what was found."""

    title: str
    looked_for: str
    searched: Searched = field(default_factory=Searched)
    findings: Counter[Finding] = field(default_factory=Counter)
    examples: dict[Finding, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def add(self, finding: Finding, example: str | None = None) -> None:
        self.findings[finding] += 1
        if example is not None:
            shown = self.examples.setdefault(finding, [])
            if len(shown) < 3:
                shown.append(example)

    def found(
        self,
        needles: Iterable[Needle],
        *,
        where: str,
        location: str,
        place: str = "",
        example: str | None = None,
    ) -> None:
        """Record what was found in one item (a call, a record, a row), once per kind,
        leaving out what is allowed at `place`."""
        for kind in sorted({n.kind for n in needles if place not in n.allowed_in}):
            self.add(Finding(where, kind, location), example)

    def render(self) -> str:
        """The report as printed: counts, then "passed" or one line per finding."""
        s = self.searched
        lines = [self.title, f"Looked for: {self.looked_for}", "Searched:"]
        if s.slack_calls or s.slack_answers:
            lines.append(
                f"  Slack     {s.slack_calls} API calls the stand-in received (arguments and "
                f"answers), {s.slack_answers} answers Vigil gave to Slack's requests"
            )
        if s.log_records or s.log_lines_written:
            lines.append(
                f"  logs      {s.log_records} log records at every level Vigil emits with "
                f"VIGIL_LOG_LEVEL=DEBUG ({s.log_lines_written} lines written)"
            )
        if s.log_files:
            lines.append(f"  log files {s.log_files} files, {s.log_file_lines} lines")
        lines.append(f"  database  {s.tables} tables, {s.rows} rows, every column")
        lines += [f"Note: {note}" for note in self.notes]
        if self.passed:
            lines.append(
                "privacy-check passed: no pupil name outside the pupils table, and no "
                "narrative, reason or action text in plain text."
            )
            return "\n".join(lines)
        lines.append(f"privacy-check FAILED: {len(self.findings)} findings")
        ordered = sorted(self.findings.items(), key=lambda item: (item[0].where, item[0].location))
        for finding, count in ordered[:MAX_LINES]:
            times = f" ({count} times)" if count > 1 else ""
            examples = self.examples.get(finding)
            rows = f"; e.g. {', '.join(examples)}" if examples else ""
            lines.append(
                f"  {finding.where}: {finding.kind} found in {finding.location}{times}{rows}"
            )
        if len(ordered) > MAX_LINES:
            lines.append(f"  … and {len(ordered) - MAX_LINES} more")
        return "\n".join(lines)


# -- searching each source --------------------------------------------------------------------


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
    async for row in _stream(connection, query):
        yield row


async def search_database(connection: AsyncConnection, matcher: Matcher, report: Report) -> None:
    """A raw dump of every table: each value of each row, as text."""
    for shape in await table_shapes(connection):
        report.searched.tables += 1
        key_index = shape.columns.index(shape.key) if shape.key else None
        async for row in raw_rows(connection, shape):
            report.searched.rows += 1
            views = [list(texts_of(value)) for value in row]
            if not matcher.find_all(text for texts in views for text in texts):
                continue
            key = row[key_index] if key_index is not None else None
            example = f"{shape.key} {key}" if isinstance(key, int) else None
            for name, texts in zip(shape.columns, views, strict=True):
                report.found(
                    matcher.find_all(texts),
                    where="database",
                    location=f"{shape.name}.{name}",
                    place=shape.name,
                    example=example,
                )


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


# -- mode B: a school's own database --------------------------------------------------------


async def check_school(settings: Settings, *, log_files: Sequence[Path] = ()) -> Report:
    """Search the configured database (read-only) and `log_files` for every pupil's full
    name outside the pupils table and for every stored text in plain text anywhere."""
    _check_inputs(settings, log_files)
    url = settings.database_url
    cipher = Cipher(settings.data_key or "")
    engine = create_engine(url)
    try:
        async with read_only(engine) as connection:
            if PUPILS_TABLE not in {s.name for s in await table_shapes(connection)}:
                raise PrivacyCheckError("this is not a Vigil database (no pupils table)")
            values = await _school_values(connection, cipher)
            report = values.report()
            matcher = Matcher(values.needles)
            await search_database(connection, matcher, report)
    finally:
        await engine.dispose()
    for path in log_files:
        search_log_file(path, matcher, report)
    return report


def _check_inputs(settings: Settings, log_files: Sequence[Path]) -> None:
    """Refuse at once what cannot be checked (and never create an empty SQLite file)."""
    settings.require("data_key")
    for path in log_files:
        if not path.is_file():
            raise PrivacyCheckError(f"no log file at {path}")
    if is_sqlite(settings.database_url):
        database = make_url(settings.database_url).database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise PrivacyCheckError(f"no SQLite database at {database}")


@dataclass
class _SchoolValues:
    """What the school's database says must not be found, and what could not be read."""

    needles: list[Needle] = field(default_factory=list)
    pupils: int = 0
    stored: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)

    def report(self) -> Report:
        """An empty report saying what is looked for (and what could not be decrypted)."""
        report = Report(
            title="Vigil privacy check: the school's database (read only; nothing changed)",
            looked_for=(
                f"the full names of {self.pupils} pupils (allowed only in the pupils table) "
                f"and {self.stored} stored narratives, reasons and action texts decrypted "
                f"with VIGIL_DATA_KEY (those of {MIN_TEXT} or more characters, by their "
                f"opening and closing {WINDOW} characters; allowed nowhere in plain text)"
            ),
        )
        for location, count in self.unreadable.items():
            finding = Finding("database", "text VIGIL_DATA_KEY cannot decrypt", location)
            report.findings[finding] += count
        if self.unreadable and not self.stored:
            report.notes.append(
                "VIGIL_DATA_KEY decrypts none of the stored texts: is it this database's key?"
            )
        return report

    def add_text(self, cipher: Cipher, token: bytes, *, kind: str, location: str) -> None:
        try:
            plain = cipher.decrypt(token)
        except DecryptionError:
            self.unreadable[location] += 1
            return
        self.stored += 1
        self.needles += text_needles(plain, kind=kind)


async def _school_values(connection: AsyncConnection, cipher: Cipher) -> _SchoolValues:
    """Every pupil's full names, and every stored text decrypted."""
    values = _SchoolValues()
    names = select(Pupil.id, Pupil.forename, Pupil.surname, Pupil.preferred_name)
    async for pupil_id, forename, surname, preferred in _stream(connection, names):
        values.pupils += 1
        values.needles += name_needles(
            forename=forename,
            surname=surname,
            preferred_name=preferred,
            label=f"pupil id {pupil_id}",
            whole_only=True,
        )
    incidents = select(Incident.id, Incident.narrative_ct, Incident.parents_reason_ct)
    async for incident_id, narrative, reason in _stream(connection, incidents):
        values.add_text(
            cipher,
            narrative,
            kind=f"narrative of incident id {incident_id}",
            location="incidents.narrative_ct",
        )
        if reason is not None:
            values.add_text(
                cipher,
                reason,
                kind=f"parents' reason of incident id {incident_id}",
                location="incidents.parents_reason_ct",
            )
    action_texts = select(IncidentAction.id, IncidentAction.text_ct)
    async for action_id, token in _stream(connection, action_texts):
        values.add_text(
            cipher,
            token,
            kind=f"action text of action id {action_id}",
            location="incident_actions.text_ct",
        )
    return values


async def _stream(connection: AsyncConnection, query: Any) -> AsyncIterator[Sequence[Any]]:
    result = await connection.stream(query)
    async for rows in result.partitions(BATCH):
        for row in rows:
            yield tuple(row)


# -- mode A: the exercise --------------------------------------------------------------------

TEACHER = "U0TCHPATEL"  # teaches 4B
TEACHER_3A = "U0TCHEVANS"
DSL = "U0DSL0HUGH"
DEPUTY = "U0DDSLOKAF"
HEAD = "U0HEADMORG"
TA = "U0TALEWIS0"
OFFICE = "U0OFFICE00"
VISITOR = "U0VISITOR9"
MASH = "Children's social care (MASH)"
POLICE = "Police"
ALERT_CHANNEL = "C0VIGILDRILL"
_ONSETS = "b br ch d dr f fl g gl gr k kl m n p pl qu r s sk sn st t th tr v w z".split()
_VOWELS = "a e i o u ae ei ou y".split()
_CODAS = ["", "n", "r", "x", "th", "ck", "l", "m", "sk"]
_RARE_ONSETS = ("zh", "kv", "xh", "vr", "dz", "pf")


def made_up_word(rng: secrets.SystemRandom, syllables: int = 4) -> str:
    """A pronounceable word in no dictionary and no roster (it starts as no English word
    does, so it cannot turn up in Vigil's own wording by chance)."""
    parts = [
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
    ]
    return (rng.choice(_RARE_ONSETS) + rng.choice(_VOWELS) + "".join(parts)).capitalize()


@dataclass
class Seeds:
    """The made-up pupils and phrases of one exercise, and the needles they make."""

    rng: secrets.SystemRandom = field(default_factory=secrets.SystemRandom)
    pupils: list[DemoPupil] = field(default_factory=list)
    needles: list[Needle] = field(default_factory=list)

    def add_pupils(self, groups: Sequence[str], *, with_preferred: Sequence[int]) -> None:
        for index, group in enumerate(groups):
            age = 4 + ("R1", "1A", "2A", "3A", "4B", "5C", "6D").index(group)
            pupil = DemoPupil(
                upn=f"Z{self.rng.randrange(10**11):011d}{'ABCDEFGHJK'[index % 10]}",
                forename=made_up_word(self.rng, 2),
                surname=made_up_word(self.rng, 3),
                date_of_birth=dt.date(dt.date.today().year - age, 9, 1)
                + dt.timedelta(days=index * 37),
                year_group={"R1": "Reception"}.get(group, group[0]),
                registration_group=group,
                preferred_name=made_up_word(self.rng, 2) if index in with_preferred else "",
            )
            self.pupils.append(pupil)
            self.needles += name_needles(
                forename=pupil.forename,
                surname=pupil.surname,
                preferred_name=pupil.preferred_name or None,
                label=f"made-up pupil {index + 1}",
                whole_only=False,
            )

    def phrase(self, kind: str) -> str:
        """A distinctive phrase that must never be found, recorded as a needle."""
        text = f"{made_up_word(self.rng, 3).lower()}-{secrets.token_hex(3)}"
        self.needles.append(Needle(normalise(text), kind))
        return text

    def text(self, kind: str, middle: str) -> str:
        """A realistic text opening and closing with a distinctive phrase."""
        return f"{self.phrase(kind)} {middle} {self.phrase(kind)}"


def _at(day: dt.date, hour: int, minute: int, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).astimezone(dt.UTC)


def _local(day: dt.date, hour: int, minute: int = 0) -> str:
    """A time as a `datetime-local` form field holds it."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def _button_value(message: Mapping[str, Any], action_id: str) -> str:
    """The value of the button `action_id` in a Slack message."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or [block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return str(element.get("value", ""))
    raise PrivacyCheckError(f"no {action_id} button in the message")


def _expect(step: str, status: int, *wanted: int) -> None:
    if status not in wanted:
        raise PrivacyCheckError(f"the drill's step '{step}' got HTTP {status}")


@contextlib.contextmanager
def database_fails_once(engine: AsyncEngine, marker: str) -> Iterator[None]:
    """The next SQL statement containing `marker` fails as if the database had gone away."""
    armed = [True]
    outage = engine.dialect.loaded_dbapi.OperationalError

    def fail(*args: Any) -> None:
        statement = args[2]
        if armed and marker in statement:
            armed.clear()
            raise outage("the privacy drill's simulated outage")

    event.listen(engine.sync_engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fail)
    if armed:
        raise PrivacyCheckError(f"the drill's simulated outage never happened ({marker!r})")


async def _download(user: WebUser, path: str) -> int:
    """Download a file (a CSV, a PDF) as a browser does; its HTTP status."""
    async with user.http.get(f"{user.base_url}{path}") as response:
        await response.read()
        return response.status


class Drill:
    """Every flow a school uses, driven through the real server and the Slack stand-in."""

    def __init__(self, harness: Harness, seeds: Seeds, directory: Path) -> None:
        self.harness = harness
        self.seeds = seeds
        self.directory = directory
        self.answers: list[SlackAnswer] = []
        self.flows: list[str] = []
        self.totp: dict[str, str] = {}
        self.working = harness.server.school.working_time

    # -- helpers ------------------------------------------------------------------------------

    def _answered(self, kind: str, response: SlackResponse, step: str) -> SlackResponse:
        _expect(step, response.status, 200)
        self.answers.append(SlackAnswer(kind, response.body))
        return response

    def _move_clock(self, instant: dt.datetime) -> None:
        """Set the server's clock (forward only, so queued messages stay due)."""
        self.harness.clock_offset = max(
            self.harness.clock_offset, instant - dt.datetime.now(dt.UTC)
        )

    def _working_monday(self) -> dt.date:
        """A Monday at least two days away whose Monday to Thursday are all working days."""
        zone = self.working.zone
        day = dt.datetime.now(zone).date() + dt.timedelta(days=2)
        while day.weekday() != 0 or not all(
            self.working.is_working_day(day + dt.timedelta(days=n)) for n in range(4)
        ):
            day += dt.timedelta(days=1)
        return day

    async def _staff_id(self, slack_id: str) -> int:
        async with self.harness.server.factory() as db:
            found = await db.scalar(select(Staff.id).where(Staff.slack_user_id == slack_id))
        if found is None:
            raise PrivacyCheckError(f"the drill's staff member {slack_id} was not imported")
        return int(found)

    async def _pupil_id(self, pupil: DemoPupil) -> int:
        async with self.harness.server.factory() as db:
            found = await db.scalar(select(Pupil.id).where(Pupil.upn == pupil.upn))
        assert found is not None
        return int(found)

    async def _settle(self) -> None:
        await self.harness.server.tasks.idle()
        await self.harness.delivered()

    @contextlib.asynccontextmanager
    async def _signed_in(self, user_id: str) -> AsyncIterator[WebUser]:
        """Signed in with the one-time link from `/concern login` and a TOTP code."""
        user = await self.harness.sign_in(user_id, secret=self.totp.get(user_id))
        if user.secret:
            self.totp[user_id] = user.secret
        try:
            yield user
            status, _ = await user.post("/signout")
            _expect("sign out", status, 200)
        finally:
            await user.close()

    # -- the flows ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Every flow, in the order a school's week would bring them."""
        await self.import_rosters()
        monday = self._working_monday()
        zone = self.working.zone
        self._move_clock(_at(monday, 9, 5, zone))
        await self.slack_commands()
        await self.refused_submissions()
        await self.database_outage()
        await self.file_concerns()
        await self.slack_alerts()
        await self.web_on_monday(monday)
        await self.sign_in_with_slack()
        self._move_clock(_at(monday + dt.timedelta(days=1), 10, 0, zone))
        await self.overdue_nudges(snooze=True)
        self._move_clock(_at(monday + dt.timedelta(days=3), 10, 0, zone))
        await self.overdue_nudges(snooze=False)
        await self.web_on_thursday(monday + dt.timedelta(days=3))
        await self.app_home(DSL, HEAD)
        await self._settle()

    async def import_rosters(self) -> None:
        """The staff and pupil rosters, through the real importer, from CSV."""
        staff_file = self.directory / "staff.csv"
        pupil_file = self.directory / "pupils.csv"
        staff_file.write_text(staff_csv(STAFF), encoding="utf-8")
        pupil_file.write_text(pupils_csv(self.seeds.pupils), encoding="utf-8")
        server = self.harness.server
        workspace_id = self.harness.workspace_id
        staff = await roster.import_staff(
            server.factory,
            workspace_id=workspace_id,
            path=staff_file,
            lookup_slack_id=make_slack_lookup(server.client),
        )
        pupils = await roster.import_pupils(
            server.factory, workspace_id=workspace_id, path=pupil_file
        )
        if staff.errors or pupils.errors:
            raise PrivacyCheckError("the drill's rosters were not imported cleanly")
        self.flows.append("roster import")

    async def slack_commands(self) -> None:
        """`/concern help`, `/concern login`, and `/concern` from someone not on the roster."""
        slack, command = self.harness.slack, self.harness.settings.command
        self._answered(
            "slash command", await slack.slash_command(TEACHER, "help", command=command), "help"
        )
        self._answered(
            "slash command", await slack.slash_command(TEACHER, "login", command=command), "login"
        )
        self.harness.standin.add_user(VISITOR, email="visitor@example.org", name="A Visitor")
        await self.harness.open_concern(VISITOR)
        self.flows += ["/concern help", "/concern login", "/concern from a non-member"]

    async def _typeahead(self, user_id: str, view: dict[str, Any], query: str, block: str) -> Any:
        response = await self.harness.slack.block_suggestion(
            user_id, view=view, action_id=PUPIL_SEARCH, block_id=block, value=query
        )
        self._answered(TYPEAHEAD, response, "pupil typeahead")
        options = (response.json or {}).get("options") or []
        if not options:
            raise PrivacyCheckError("the pupil typeahead found none of the drill's pupils")
        return options[0]

    async def _submit(
        self, user_id: str, *, query: str, values: dict[str, Any], linked: Sequence[str] = ()
    ) -> SlackResponse:
        """/concern, the typeahead, then Submit: as a member of staff does it."""
        view = await self.harness.open_concern(user_id)
        values = {"pupil": await self._typeahead(user_id, view, query, "pupil"), **values}
        if linked:
            values["linked_pupils"] = [
                await self._typeahead(user_id, view, q, "linked_pupils") for q in linked
            ]
        response = await self.harness.slack.view_submission(user_id, view=view, values=values)
        return self._answered("modal submission", response, "submit a concern")

    async def database_outage(self) -> None:
        """The database failing under the typeahead and under a submission: what is logged
        then (tracebacks, SQL errors) must name no pupil and quote no narrative."""
        slack, pupil = self.harness.slack, self.seeds.pupils[5]
        engine = self.harness.server.engine
        view = await self.harness.open_concern(TEACHER)
        with database_fails_once(engine, "search_text"):
            response = await slack.block_suggestion(
                TEACHER,
                view=view,
                action_id=PUPIL_SEARCH,
                block_id="pupil",
                value=f"{pupil.forename} {pupil.surname}",
            )
            self._answered(TYPEAHEAD, response, "the typeahead in an outage")
        values = {
            "pupil": await self._typeahead(TEACHER, view, pupil.surname, "pupil"),
            "narrative": self.seeds.text(
                "narrative of a submission that failed to save", "hid under the stairs again."
            ),
            "categories": ["Well-being"],
            "parents_contacted": "yes",
        }
        with database_fails_once(engine, "INSERT INTO incidents "):
            response = await slack.view_submission(TEACHER, view=view, values=values)
            self._answered("modal submission", response, "a submission in an outage")
        self.flows.append("database outage (typeahead and submission)")

    async def refused_submissions(self) -> None:
        """Submissions refused with field errors: their text must go nowhere."""
        pupil = self.seeds.pupils[4]
        kind = "narrative of a refused submission"
        missing_reason = await self._submit(
            TEACHER,
            query=pupil.forename,
            values={
                "narrative": self.seeds.text(kind, "was seen crying by the gate at lunchtime."),
                "categories": ["Well-being"],
                "parents_contacted": "no",
            },
        )
        too_long = await self._submit(
            TEACHER,
            query=pupil.surname,
            values={
                "narrative": self.seeds.text(kind, "went on and on. " * 200),
                "categories": ["Behaviour"],
                "parents_contacted": "yes",
            },
        )
        for response in (missing_reason, too_long):
            if (response.json or {}).get("response_action") != "errors":
                raise PrivacyCheckError("a submission the drill expected refused was accepted")
        self.flows.append("refused submissions (field errors)")

    async def file_concerns(self) -> None:
        """Three concerns: with linked pupils, agencies and a reason; restricted; plain."""
        seeds, pupils = self.seeds, self.seeds.pupils
        filed = [
            await self._submit(
                TEACHER,
                query=pupils[0].forename,
                linked=[pupils[1].surname],
                values={
                    "narrative": seeds.text(
                        "narrative", "said she had not eaten since Friday; asked to stay late."
                    ),
                    "categories": ["Well-being", "Behaviour"],
                    "also_alert": [TA],
                    "agencies": [MASH],
                    "parents_contacted": "no",
                    "parents_reason": seeds.text("parents' reason", "advice from MASH first."),
                },
            ),
            await self._submit(
                DSL,
                query=pupils[3].upn.lower(),
                values={
                    "narrative": seeds.text("narrative", "disclosed something at home."),
                    "categories": ["Safeguarding"],
                    "parents_contacted": "yes",
                },
            ),
            await self._submit(
                TEACHER_3A,
                query=pupils[2].preferred_name or pupils[2].forename,
                values={
                    "narrative": seeds.text("narrative", "late for the fourth time this week."),
                    "categories": ["Attendance"],
                    "parents_contacted": "yes",
                    # Filing checks "not in the future" against the real time.
                    "happened_at": int(time.time()) - 3600,
                },
            ),
        ]
        for response in filed:
            if response.body:
                fields = sorted(((response.json or {}).get("errors") or {}).keys())
                raise PrivacyCheckError(f"a concern the drill filed was refused ({fields})")
        await self._settle()
        self.flows += ["/concern + typeahead + submission (3 concerns)", "alert delivery"]

    async def slack_alerts(self) -> None:
        """Mark as read and Open from the DM, and the App Home (with Mark as read there)."""
        standin = self.harness.standin
        for user_id in (DSL, TA):
            channel = standin.dm_channel_for(user_id)
            message = next(m for m in standin.messages_for_user(user_id) if "#1 " in m["text"])
            for action in (OPEN_ACTION, MARK_READ_ACTION):
                response = await self.harness.slack.click_button(
                    user_id, message, action, channel_id=channel
                )
                self._answered("button", response, "alert button")
        await self._settle()
        await self.app_home(HEAD, TEACHER)
        home = standin.home_views[HEAD]
        button = next(
            (
                b["accessory"]
                for b in home.get("blocks", [])
                if (b.get("accessory") or {}).get("action_id") == MARK_READ_ACTION
            ),
            None,
        )
        if button is None:
            raise PrivacyCheckError("the head's App Home listed no unread alert")
        response = await self.harness.slack.block_actions(
            HEAD, action_id=MARK_READ_ACTION, value=button["value"], view=home
        )
        self._answered("button", response, "Mark as read on the App Home")
        await self._settle()
        self.flows += ["Mark as read and Open (DM)", "App Home + Mark as read there"]

    async def app_home(self, *user_ids: str) -> None:
        standin = self.harness.standin
        published = len(standin.calls_to("views.publish", ok_only=True))
        for user_id in user_ids:
            event = {"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home"}
            self._answered("event", await self.harness.slack.event(event), "App Home")
        await standin.wait_for_calls("views.publish", published + len(user_ids))

    async def web_on_monday(self, monday: dt.date) -> None:
        """Sign-in by link and TOTP; alerts, the incident, actions, referrals, sharing."""
        seeds = self.seeds
        ta, office = await self._staff_id(TA), await self._staff_id(OFFICE)
        async with self._signed_in(TEACHER) as teacher:
            for path in ("/alerts", "/incidents/1"):
                _expect(path, (await teacher.get(path))[0], 200)
            status, _ = await teacher.post(
                "/incidents/1/actions",
                {"text": seeds.text("action text", "spoke to her grandmother."), "alert": str(ta)},
            )
            _expect("add an action", status, 200)
            _expect("a concern not shared", (await teacher.get("/incidents/2"))[0], 404)
        async with self._signed_in(DSL) as dsl:
            _expect("/incidents/1", (await dsl.get("/incidents/1"))[0], 200)
            _expect("mark read on the web", (await dsl.post("/incidents/1/read"))[0], 200)
            for agency in (MASH, POLICE):
                await dsl.get("/incidents/1")
                status, _ = await dsl.post(
                    "/incidents/1/actions",
                    {
                        "text": seeds.text("referral note", "phoned the duty desk."),
                        "agency": agency,
                        "referred_at": _local(monday, 9),
                        "reference": "DRILL/1",
                    },
                )
                _expect("record a referral", status, 200)
            status, _ = await dsl.post(
                "/incidents/1/actions",
                {
                    "text": seeds.text("text of a refused action", "a mistaken referral."),
                    "agency": "Not an agency",
                },
            )
            _expect("a refused action", status, 400)
            await dsl.get("/incidents/2")
            status, _ = await dsl.post(
                "/incidents/2/actions",
                {
                    "text": seeds.text("action text", "re-categorised after a conversation."),
                    "categories": ["Safeguarding", "Medical"],
                },
            )
            _expect("re-categorise", status, 200)
            await dsl.get("/incidents/1")
            _expect(
                "share", (await dsl.post("/incidents/1/invite", {"staff": str(office)}))[0], 200
            )
            for path in ("/alerts", "/referrals", "/audit", "/staff"):
                _expect(path, (await dsl.get(path))[0], 200)
        async with self._signed_in(OFFICE) as guest:
            _expect("a shared concern", (await guest.get("/incidents/1"))[0], 200)
        await self._settle()
        self.flows += [
            "web sign-in (one-time link + TOTP)",
            "incident page, Mark as read, actions, referrals, sharing",
            "refused action",
            "re-categorisation",
            "referrals board, audit log, staff page",
        ]

    async def sign_in_with_slack(self) -> None:
        """Sign in with Slack (OpenID Connect through the stand-in), then TOTP."""
        harness = self.harness
        harness.standin.oidc_sign_in_as(DEPUTY)
        async with WebUser(harness.server.url, harness.now) as user:
            await user.get("/signin")
            async with user.http.get(f"{user.base_url}/auth/slack", allow_redirects=False) as r:
                authorize = r.headers["Location"]
            async with user.http.get(authorize, allow_redirects=False) as r:
                callback = r.headers["Location"]
            status, _ = await user.get(callback.replace(harness.settings.public_url, user.base_url))
            _expect("Sign in with Slack", status, 200)
            await user.get("/totp")
            status, _ = await user.pass_totp()
            _expect("TOTP after Sign in with Slack", status, 200)
            _expect("/referrals", (await user.get("/referrals"))[0], 200)
        self.flows.append("Sign in with Slack (OIDC) + TOTP")

    async def overdue_nudges(self, *, snooze: bool) -> None:
        """The scheduler's overdue check; the DSL's nudges; Snooze (and a forged one)."""
        harness = self.harness
        if await harness.server.overdue_job.run() == 0:
            raise PrivacyCheckError("the overdue check nudged nothing")
        await self._settle()
        if snooze:
            channel = harness.standin.dm_channel_for(DSL)
            nudge = next(
                m
                for m in harness.standin.messages_for_user(DSL)
                if m.get("text", "").startswith("Referral R")
            )
            response = await harness.slack.click_button(
                DSL, nudge, SNOOZE_ACTION, channel_id=channel
            )
            self._answered("button", response, "Snooze")
            forged = await harness.slack.block_actions(
                TEACHER,
                action_id=SNOOZE_ACTION,
                value=_button_value(nudge, SNOOZE_ACTION),
                message=nudge,
                channel_id=channel,
            )
            self._answered("button", forged, "a forged Snooze")
            await self.app_home(DSL)
            await self._settle()
            self.flows += ["overdue nudge", "Snooze (and a refused one)"]
        else:
            self.flows.append("overdue nudge with escalation to the head")

    async def web_on_thursday(self, thursday: dt.date) -> None:
        """Reports and downloads, the agency's response, closing, chronology, PDF."""
        seeds, first = self.seeds, self.seeds.pupils[0]
        pupil_id = await self._pupil_id(first)
        async with self.harness.server.factory() as db:
            referrals = dict(
                (await db.execute(select(Referral.agency, Referral.id).order_by(Referral.id))).all()
            )
        async with self._signed_in(DSL) as dsl:
            for path in ("/reports", "/reports/governors"):
                _expect(path, (await dsl.get(path))[0], 200)
            for table_name in ("categories", "referrals", "alerts", "year-groups"):
                _expect("CSV", await _download(dsl, f"/reports/{table_name}.csv"), 200)
            for table_name in ("categories", "year-groups", "agencies", "alerts"):
                _expect("CSV", await _download(dsl, f"/reports/governors/{table_name}.csv"), 200)
            await dsl.get("/incidents/1")
            status, _ = await dsl.post(
                "/incidents/1/actions",
                {
                    "text": seeds.text("agency response", "strategy discussion tomorrow."),
                    f"outcome-{referrals[MASH]}": "response",
                    f"responded_at-{referrals[MASH]}": _local(thursday, 9, 30),
                    f"outcome-{referrals[POLICE]}": "closed",
                },
            )
            _expect("record the response and close", status, 200)
            _expect("pupil search", (await dsl.get("/pupils", params={"q": first.surname}))[0], 200)
            chronology = f"/pupils/{pupil_id}"
            _expect("chronology", (await dsl.get(chronology))[0], 200)
            _expect(
                "chronology", (await dsl.get(chronology, params={"category": "Behaviour"}))[0], 200
            )
            # The PDF needs Pango on the server; without it the answer is 503.
            _expect(
                "chronology PDF", await _download(dsl, f"{chronology}/chronology.pdf"), 200, 503
            )
            _expect("/audit", (await dsl.get("/audit", params={"incident": "1"}))[0], 200)
            await dsl.get("/staff")
            teacher = await self._staff_id(TEACHER)
            _expect("TOTP reset", (await dsl.post(f"/staff/{teacher}/totp-reset"))[0], 200)
        await self._settle()
        self.flows += [
            "reports and every CSV download",
            "agency response and closing",
            "pupil search, chronology and its PDF",
            "audit log, authenticator reset, sign out",
        ]


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
            "in narratives, reasons, actions and referral notes (allowed nowhere)",
        )
        matcher = Matcher(seeds.needles)
        search_slack_calls(calls, matcher, report)
        search_slack_answers(drill.answers, matcher, report)
        search_log_records(capture.records, matcher, report)
        report.searched.log_lines_written = len(written.getvalue().splitlines())
        engine = create_engine(url)
        try:
            async with read_only(engine) as connection:
                await search_database(connection, matcher, report)
        finally:
            await engine.dispose()
    report.notes.append(f"flows run: {', '.join(drill.flows)} ({time.monotonic() - started:.1f} s)")
    if database_url:
        report.notes.append("the drill's made-up records stay in the database given")
    return report
