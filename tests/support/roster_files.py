"""Hypothesis strategies for roster CSV files: generated staff and pupil files whose rows
are valid by construction or broken in one documented way (each row knows what must be
stored of it, or that it must be refused, and the line it starts on), and files of
anything at all."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from store import roster
from store.access import ROLES
from store.pupils import search_text
from tests.support.strategies import (
    CONTROLS,
    clean,
    pad,
    spaced,
    wild,
    with_control,
    word,
    word_char,
)

EXTRA_COLUMNS = (
    "Notes",
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "'; DROP TABLE pupils; --",
    "\u200fמחלקה\u200f",
    "",
    "unique pupil number",
)
BAD_UPNS = (
    "'; DROP TABLE pupils; --",
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "A12345678901",  # 12 characters
    "A1234567890123",  # 14
    "112345678901A",
    "A123456\x00789012",
    "Z" * 3000,
)
BAD_DATES = (
    "31/02/2015",
    "2015-13-01",
    "2999-01-01",
    "1899-12-31",
    "<script>",
    "=1+1",
    "'; DROP TABLE pupils; --",
    "9" * 3000,
    "2015-01-01\x00",
)
BAD_EMAILS = (
    "not-an-email",
    "a@b",
    "@school.example",
    "a@@school.example",
    "'; DROP TABLE staff; --",
    "<script>@x",
    "=cmd|' /C calc'!A0",
    "a b@school.example",
    "x" * 3000 + "@school.example",
    "a\x00b@school.example",
    "nul@school.example\x00",
    "esc\x1b@school.example",
    "del@sch\x7fool.example",
)
BAD_ROLES = ("<script>", "=cmd|' /C calc'!A0", "admin", "'; DROP TABLE staff; --", "teacher\x00")
BAD_SLACK_IDS = ("not-an-id", "<@U123>", "U" + "1" * 40, "U12\x00", "'; --", "U-1")
STAFF_COLUMNS = roster.STAFF_REQUIRED + roster.STAFF_OPTIONAL
#: (line terminator, quoting): with a bare "\n" terminator only QUOTE_ALL keeps a "\r"
#: inside a cell from being read as a line break (that would be the writer's fault).
CSV_STYLES = (("\r\n", csv.QUOTE_MINIMAL), ("\r\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_ALL))
PUPIL_LIMITS = {"forename": 100, "surname": 100, "preferred_name": 100}
PUPIL_LIMITS |= {"year_group": 20, "registration_group": 50}
STAFF_NAME_MAX, CLASS_MAX, EMAIL_MAX, SEARCH_TEXT_MAX = 200, 50, 320, 400
email_char = word_char.filter(lambda c: c != "@")
class_word = word.filter(lambda w: ";" not in w)


@dataclass
class Row:
    """One data row of a generated roster and what must become of it."""

    cells: dict[str, str]  # column -> the cell as written
    expected: dict[str, Any] | None  # the stored values, or None: must be rejected
    key: str = ""  # the key it is stored under (UPN / email) when expected
    trailing: list[str] = field(default_factory=list)  # cells beyond the header's width
    cut_before: str | None = None  # write only the cells before this column
    line: int = 0  # where it starts in the file (set when written; 0: a blank row)


@dataclass
class RosterFile:
    data: bytes
    encoding: str
    rows: list[Row]  # the non-blank data rows, in file order
    lines: int  # physical lines in the file


def line_breaks(text: str) -> int:
    """Line breaks as reading with newline="" counts them: \\r\\n, \\r or \\n."""
    return len(re.findall(r"\r\n|\r|\n", text))


def _spelling(draw: st.DrawFn, name: str) -> str:
    """A documented spelling of a column name: any case, spaces or hyphens, padded."""
    variants = [name, name.upper(), name.replace("_", " ").title(), f" {name.replace('_', '-')} "]
    return draw(st.sampled_from(variants))


def _longer_than(draw: st.DrawFn, limit: int) -> str:
    """A value that cleans to more than `limit` (and at most 3,000) characters."""
    length = draw(st.integers(limit + 1, 3000))
    base = draw(word)
    value = (base * (length // len(base) + 1))[:length]
    return value if len(clean(value)) > limit else "x" * length


@st.composite
def roster_files(
    draw: st.DrawFn, columns: tuple[str, ...], rows: Callable[..., st.SearchStrategy[Row]]
) -> RosterFile:
    """A roster: the header (any order, documented spellings, extra columns), rows with
    blank rows between them, in a random CSV style and encoding (UTF-8 with or without
    BOM, UTF-16)."""
    extras = draw(st.lists(st.sampled_from(EXTRA_COLUMNS), max_size=2, unique=True))
    order: list[tuple[str, str]] = draw(
        st.permutations([("known", c) for c in columns] + [("extra", e) for e in extras])
    )
    written: list[Row] = []
    for index in range(draw(st.integers(0, 10))):
        written.append(draw(rows(index, written)))
    terminator, quoting = draw(st.sampled_from(CSV_STYLES))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator, quoting=quoting)
    writer.writerow([_spelling(draw, n) if k == "known" else n for k, n in order])
    for row in written:
        for _ in range(draw(st.integers(0, 1))):  # a blank row: ignored, but still a line
            writer.writerow(draw(st.sampled_from([[], [""] * len(order), [" ", "\t "]])))
        cells = [row.cells.get(n, "") if k == "known" else draw(wild) + "x" for k, n in order]
        if row.cut_before is not None:
            cells = cells[: order.index(("known", row.cut_before))]
        cells += row.trailing
        row.line = line_breaks(buffer.getvalue()) + 1
        writer.writerow(cells)
        if not any(c.strip() for c in cells):  # blank after all: ignored, not reported
            row.expected, row.line = None, 0
    text = buffer.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    lines = line_breaks(text) + (0 if text.endswith(("\n", "\r")) else 1)
    return RosterFile(text.encode(encoding), encoding, [r for r in written if r.line], lines)


def _bad_row(row: Row) -> Row:
    row.expected, row.key = None, ""
    return row


@st.composite
def pupil_rows(draw: st.DrawFn, index: int, earlier: list[Row], preferred: bool) -> Row:
    """A pupil row: valid by construction, then perhaps broken in one documented way."""
    upn = f"{draw(st.sampled_from('ABHXZ'))}{index + 1:011d}{draw(st.sampled_from('0579ABZ'))}"
    cells = {"upn": draw(pad) + (upn.lower() if draw(st.booleans()) else upn) + draw(pad)}
    expected: dict[str, Any] = {"upn": upn}
    for column, words in (
        ("forename", 4),
        ("surname", 4),
        ("year_group", 2),
        ("registration_group", 3),
    ):
        cells[column], expected[column] = draw(spaced(max_words=words))
    expected["preferred_name"] = None
    if preferred:
        if draw(st.booleans()):
            cells["preferred_name"], expected["preferred_name"] = draw(spaced())
        else:
            cells["preferred_name"] = draw(pad)  # blank: no preferred name
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date.today() - dt.timedelta(days=1)))
    written = draw(
        st.sampled_from(
            [
                f"{born.year:04d}-{born.month:02d}-{born.day:02d}",
                f"{born.year:04d}-{born.month}-{born.day}",
                f"{born.day:02d}/{born.month:02d}/{born.year:04d}",
                f"{born.day}/{born.month}/{born.year:04d} 09:30",
                f"{born.year:04d}-{born.month:02d}-{born.day:02d}T23:59:59.5",
            ]
        )
    )
    cells["date_of_birth"] = draw(pad) + written + draw(pad)
    expected["date_of_birth"] = born
    row = Row(cells, expected, upn)

    # The documented limits, checked on the cleaned values (long names come out of `word`).
    names = {k: expected[k] for k in ("upn", "forename", "surname", "preferred_name")}
    if any(
        expected[c] is not None and len(expected[c]) > limit for c, limit in PUPIL_LIMITS.items()
    ) or (len(search_text(**names)) > SEARCH_TEXT_MAX):
        _bad_row(row)

    texts = [*PUPIL_LIMITS] if preferred else [c for c in PUPIL_LIMITS if c != "preferred_name"]
    kind = draw(
        st.sampled_from(
            ["valid"] * 4
            + ["long", "control", "empty", "upn", "date", "trailing", "cut", "duplicate"]
        )
    )
    originals = [r for r in earlier if r.expected is not None]
    if kind == "duplicate" and not originals:
        kind = "upn"
    if kind == "long":
        column = draw(st.sampled_from(texts))
        cells[column] = _longer_than(draw, PUPIL_LIMITS[column])
    elif kind == "control":
        column = draw(st.sampled_from(texts))
        cells[column] = with_control(
            cells[column], draw(st.sampled_from(CONTROLS)), draw(st.integers(0, 200))
        )
    elif kind == "empty":
        cells[draw(st.sampled_from(roster.PUPIL_REQUIRED))] = draw(pad)
    elif kind == "upn":
        cells["upn"] = draw(st.one_of(st.sampled_from(BAD_UPNS), wild.map(lambda s: s + "<")))
    elif kind == "date":
        cells["date_of_birth"] = draw(st.sampled_from(BAD_DATES))
    elif kind == "trailing":
        row.trailing = draw(st.lists(wild.map(lambda s: s + "!"), min_size=1, max_size=2))
    elif kind == "cut":
        row.cut_before = draw(st.sampled_from(roster.PUPIL_REQUIRED))
    elif kind == "duplicate":
        original = draw(st.sampled_from(originals))
        cells["upn"] = " " + original.cells["upn"].strip().lower() + "\t"
    return row if kind == "valid" else _bad_row(row)


@st.composite
def staff_rows(draw: st.DrawFn, index: int, earlier: list[Row], slack: bool) -> Row:
    """A staff row: valid by construction, then perhaps broken in one documented way."""
    local = draw(st.text(alphabet=email_char, min_size=1, max_size=20))
    domain = draw(st.sampled_from(["school.example", "ÉCOLE.example", "学校.例え", "x.y"]))
    email = f"{local}.{index}@{domain}"
    email = email.upper() if draw(st.booleans()) else email
    cells = {"email": draw(pad) + email + draw(pad)}
    expected: dict[str, Any] = {"email": email.lower()}
    cells["name"], expected["name"] = draw(spaced())
    chosen = draw(st.lists(st.sampled_from(ROLES), max_size=3))
    cells["roles"] = ";".join(
        draw(pad) + draw(st.sampled_from([r, r.upper(), r.title()])) + draw(pad) for r in chosen
    ) + draw(st.sampled_from(["", ";", "; ;"]))
    expected["roles"] = ";".join(r for r in ROLES if r in chosen) or "staff"
    groups = draw(st.lists(spaced(class_word, max_words=2), max_size=3))
    cells["classes"] = ";".join(typed for typed, _ in groups) + draw(st.sampled_from(["", ";"]))
    expected["classes"] = {cleaned for _, cleaned in groups}
    expected["slack_user_id"] = None
    if slack:
        if draw(st.booleans()):
            suffix = draw(st.text(alphabet="ABCXYZ0189", max_size=8))
            slack_id = f"{draw(st.sampled_from('UW'))}{index:05d}{suffix}"
            cells["slack_user_id"] = draw(pad) + draw(st.sampled_from([slack_id, slack_id.lower()]))
            expected["slack_user_id"] = slack_id
        else:
            cells["slack_user_id"] = draw(pad)
    row = Row(cells, expected, email.lower())
    if (
        len(expected["email"]) > EMAIL_MAX
        or len(expected["name"]) > STAFF_NAME_MAX
        or any(len(group) > CLASS_MAX for group in expected["classes"])
    ):
        _bad_row(row)

    kinds = ["valid"] * 4 + ["long", "control", "empty", "email", "role", "class", "trailing"]
    kinds += ["cut", "duplicate"] + (["slack"] if slack else [])
    kind = draw(st.sampled_from(kinds))
    originals = [r for r in earlier if r.expected is not None]
    if kind == "duplicate" and not originals:
        kind = "email"
    if kind == "long":
        cells["name"] = _longer_than(draw, STAFF_NAME_MAX)
    elif kind == "control":
        control = draw(st.sampled_from(CONTROLS))
        cells["name"] = with_control(cells["name"], control, draw(st.integers(0, 200)))
    elif kind == "empty":
        cells[draw(st.sampled_from(["email", "name"]))] = draw(pad)
    elif kind == "email":
        cells["email"] = draw(st.sampled_from(BAD_EMAILS))
    elif kind == "role":
        cells["roles"] += ";" + draw(st.sampled_from(BAD_ROLES))
    elif kind == "class":
        if draw(st.booleans()):
            bad_class = _longer_than(draw, CLASS_MAX).replace(";", ",")
        else:
            bad_class = f"4{draw(st.sampled_from(CONTROLS))}B"
        cells["classes"] = bad_class + ";" + cells["classes"]
    elif kind == "slack":
        cells["slack_user_id"] = draw(st.sampled_from(BAD_SLACK_IDS))
    elif kind == "trailing":
        row.trailing = draw(st.lists(wild.map(lambda s: s + "!"), min_size=1, max_size=2))
    elif kind == "cut":
        row.cut_before = draw(st.sampled_from(["email", "name"]))
    elif kind == "duplicate":
        original = draw(st.sampled_from(originals))
        cells["email"] = "\t" + original.cells["email"].strip() + " "
    return row if kind == "valid" else _bad_row(row)


def pupil_files() -> st.SearchStrategy[RosterFile]:
    return st.booleans().flatmap(
        lambda preferred: roster_files(
            roster.PUPIL_REQUIRED + (("preferred_name",) if preferred else ()),
            lambda index, earlier: pupil_rows(index, earlier, preferred),
        )
    )


def staff_files() -> st.SearchStrategy[RosterFile]:
    return st.booleans().flatmap(
        lambda slack: roster_files(
            roster.STAFF_REQUIRED + (("slack_user_id",) if slack else ()),
            lambda index, earlier: staff_rows(index, earlier, slack),
        )
    )


@st.composite
def any_files(draw: st.DrawFn, columns: tuple[str, ...]) -> bytes:
    """Anything: raw bytes, or text with (or without) a real header and junk rows,
    joined with or without CSV quoting (so quotes may be unbalanced)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    header = list(columns) if draw(st.booleans()) else draw(st.lists(wild, max_size=4))
    rows = draw(st.lists(st.lists(st.one_of(wild, st.sampled_from(BAD_EMAILS)), max_size=7)))
    if draw(st.booleans()):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
        writer.writerows([header, *rows])
        text = buffer.getvalue()
    else:
        text = "\n".join(",".join(cells) for cells in [header, *rows])
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"])), "replace")
