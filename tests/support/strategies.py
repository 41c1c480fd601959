"""Hypothesis strategies for hostile text, and running the async store from synchronous
`@given` tests (`Db`, the `db` fixture in tests/conftest.py).

Arbitrary means Unicode of every kind, right-to-left and zero-width marks, NUL bytes,
quotes, commas and line breaks, spreadsheet formulas, and HTML, template and SQL
fragments.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import unicodedata
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from store import workspaces
from store.db import SessionFactory, create_engine, session_factory, transaction

T = TypeVar("T")

#: For `@given` tests that use the database (`Db`): fewer examples, no deadline.
DB_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- text ---------------------------------------------------------------------------------

#: Hostile fragments without leading, trailing or repeated whitespace (so a cleaned name
#: made of them is itself).
FRAGMENTS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "</textarea><script>alert(2)</script>",
    "{{7*7}}",
    "{{ 191*7 }}",
    "{% if true %}jinja{% endif %}",
    "${7*7}",
    "'; DROP TABLE pupils; --",
    "Robert'); DROP TABLE staff;--",
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    '@HYPERLINK("http://x")',
    "&lt;b&gt;&amp;",
    '<a href="javascript:alert(1)">x</a>',
    "\u202egnp.exe\u202c",  # right-to-left override
    "\u200fשלום\u200f",  # right-to-left marks around Hebrew
    "مرحبا",
    "\u200b\u200d\u2060\ufeff",  # zero-width space, joiner, word joiner, BOM
    "👩\u200d👧\u200d👦",
    "🧒🏽",
    "e\u0301",  # combining acute (NFC makes it é)
    "Zoë Ñúñez",
    "O'Neill-Smith",
    "a,b",
    '"quoted"',
    "\\N",
)
#: Whitespace (every one is `str.isspace()`): the padding and separators trimming removes.
WHITESPACE = " \t\n\r\u00a0\u2028\u3000"
#: Control characters that are not whitespace to `str.split()` (so cleaning keeps them).
CONTROLS = "\x00\x01\x02\x07\x08\x0e\x1b\x7f\x80\x9f"

pad = st.text(alphabet=WHITESPACE, max_size=3)
separator = st.text(alphabet=WHITESPACE, min_size=1, max_size=3)
any_char = st.characters(codec="utf-8")  # every Unicode scalar value but surrogates
word_char = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")).filter(
    lambda c: not c.isspace()
)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def clean(text: str) -> str:
    """The roster's documented cleaning: trimmed, NFC, whitespace runs made one space."""
    return " ".join(nfc(text).split())


#: One word of a name: hostile fragments (which may hold single spaces) or random text.
word = st.one_of(
    st.sampled_from(FRAGMENTS).map(nfc),
    st.text(alphabet=word_char, min_size=1, max_size=12).map(nfc),
)
#: Arbitrary text with everything in it: NUL, controls, line breaks, any script.
wild = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(alphabet=any_char, max_size=12),
        st.sampled_from(CONTROLS),
    ),
    max_size=8,
).map("".join)


@st.composite
def spaced(
    draw: st.DrawFn, words: st.SearchStrategy[str] = word, max_words: int = 4
) -> tuple[str, str]:
    """(what is typed, what it cleans to): words joined by random whitespace, padded."""
    chosen = draw(st.lists(words, min_size=1, max_size=max_words))
    typed = draw(pad)
    for index, item in enumerate(chosen):
        typed += (draw(separator) if index else "") + item
    return typed + draw(pad), " ".join(chosen)


@st.composite
def core_text(draw: st.DrawFn) -> str:
    """Non-empty text with no whitespace at either end (so trimming leaves it alone)."""
    text = draw(wild).strip()
    return text or draw(st.sampled_from(FRAGMENTS))


def with_control(text: str, control: str, at: int) -> str:
    """`text` with a control character in it (not whitespace, so cleaning keeps it)."""
    at = at % (len(text) + 1)
    return text[:at] + control + text[at:]


# -- running async store code from synchronous hypothesis tests ---------------------------


@dataclass
class Db:
    """One event loop and engine for a whole test; each example uses a new workspace."""

    url: str
    runner: asyncio.Runner
    factory: SessionFactory
    counter: Iterator[int] = field(default_factory=itertools.count)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def team(self) -> str:
        return f"TPROP{next(self.counter):06d}"


def db_for(db_url: str) -> Iterator[Db]:
    """A `Db` on `db_url` for one test (the `db` fixture), closed at the end."""
    runner = asyncio.Runner()
    engine = create_engine(db_url)
    try:
        yield Db(db_url, runner, session_factory(engine))
    finally:
        runner.run(engine.dispose())
        runner.close()


async def new_workspace(factory: SessionFactory, team_id: str) -> int:
    async with transaction(factory) as session:
        return (await workspaces.ensure(session, team_id=team_id, name=f"School {team_id}")).id


def csv_text(rows: list[list[str]]) -> str:
    """`rows` as a CSV file's text, written by the csv module's defaults."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
