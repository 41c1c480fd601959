"""What the privacy check looks for, and finding it.

A :class:`Needle` is a value that must not be found (a pupil's name in the forms it takes
in text, or a stored text by its opening and closing words), labelled without revealing
it. :class:`Matcher` finds many needles in many texts at once; :func:`texts_of` gives
every way a value could be read as text (JSON, URL- and HTML-escaped, bytes).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

PUPILS_TABLE = "pupils"
TYPEAHEAD = "pupil typeahead"  # Slack shows the names Vigil offers there, by design
# The allegation modal's adult picker echoes the name typed back to its typist, by design.
ADULT_TYPEAHEAD = "adult typeahead"
WINDOW = 48  # a long stored text is looked for by its opening and closing words
MIN_TEXT = 12  # shorter stored texts ("Phoned mum.") are too common to look for
# The tables of the narrative search (`store.textsearch`): they hold keyed hashes of the
# words of stored texts, so each single word of those texts is looked for there too.
SEARCH_TABLES = frozenset({"narrative_tokens", "search_keys"})
MIN_WORD = 4  # shorter words are not looked for alone

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_SKIPPED_TYPES = (bool, int, float, Decimal, dt.date, dt.time, dt.timedelta)


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
    # Not even the pupils table holds a name in plain text (`store.models.Pupil.details_ct`).
    allowed = frozenset({TYPEAHEAD})
    texts = dict.fromkeys(normalise(form).strip() for form in forms if form.strip())
    return [Needle(text, f"pupil name ({label})", allowed) for text in texts if text]


def date_forms(day: dt.date) -> list[str]:
    """A date as it is commonly written: ISO, day/month/year (with /, - or . and with or
    without leading zeros), US month/day/year, compact, and in words."""
    d, m, y = day.day, day.month, day.year
    month, short = day.strftime("%B"), day.strftime("%b")
    forms = [
        day.isoformat(),
        f"{y}{m:02d}{d:02d}",
        f"{y}/{m:02d}/{d:02d}",
        f"{d} {month} {y}",
        f"{d} {short} {y}",
        f"{month} {d}, {y}",
        f"{short} {d}, {y}",
    ]
    for sep in "/-.":
        forms += [f"{d:02d}{sep}{m:02d}{sep}{y}", f"{d}{sep}{m}{sep}{y}"]
        forms += [f"{m:02d}{sep}{d:02d}{sep}{y}", f"{m}{sep}{d}{sep}{y}"]
    return list(dict.fromkeys(forms))


def date_of_birth_needles(day: dt.date, *, label: str) -> list[Needle]:
    """A pupil's date of birth in the forms it is commonly written, and as a date value
    (`texts_of(..., dates=True)` gives a stored date as ISO text). Allowed nowhere."""
    return [Needle(normalise(form), f"date of birth ({label})") for form in date_forms(day)]


def upn_needles(upn: str, *, label: str) -> list[Needle]:
    """A pupil's UPN in plain text (stored only as a keyed hash and encrypted)."""
    return [Needle(normalise(upn).strip(), f"UPN ({label})")] if upn.strip() else []


MIN_REFERENCE = 5  # shorter references ("123") are too common to look for


def reference_needles(reference: str, *, kind: str) -> list[Needle]:
    """An agency's reference as it would appear if leaked (allowed nowhere in plain text)."""
    flat = normalise(reference).strip()
    return [Needle(flat, kind)] if len(flat) >= MIN_REFERENCE else []


def adult_name_needles(name: str, *, kind: str) -> list[Needle]:
    """A typed name of the adult an allegation is about, as it would appear if leaked
    (allowed only in the adult picker's answer to the person typing it). A single word
    is too common to look for."""
    flat = normalise(name).strip()
    if len(flat.split()) < 2:
        return []
    return [Needle(flat, kind, frozenset({ADULT_TYPEAHEAD}))]


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


def word_needles(text: str, *, kind: str) -> list[Needle]:
    """Each word of a stored text (of MIN_WORD letters or more), as it would appear in the
    search tables (`SEARCH_TABLES`) if a word were stored there rather than its hash."""
    found = dict.fromkeys(w for w in _WORD.findall(normalise(text)) if len(w) >= MIN_WORD)
    return [Needle(word, f"a word of {kind}") for word in found]


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


def texts_of(value: Any, *, depth: int = 0, dates: bool = False) -> Iterator[str]:
    """Every way `value` could be read as text: itself, and decoded (JSON inside a string,
    URL- and HTML-escaped text, bytes as UTF-8 and, if not UTF-8, as Latin-1). With
    `dates`, a date (not a time) is read as its ISO text, as a dump would show it.

    Searching the decoded bytes finds whatever searching their hex dump would.
    """
    if dates and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        yield value.isoformat()
        return
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
