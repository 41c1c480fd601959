"""Ids and numbers from outside (a URL, a form field, a Slack button's value): one rule.

An id is ASCII digits naming a positive 64-bit integer (ids are 64-bit in both
databases); an incident's number is a positive 32-bit one. Anything else is no id at all,
and is answered as one that does not exist: never an error from the database.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1
MAX_NUMBER = 2**31 - 1
_DIGITS = len(str(MAX_ID))


def parse_id(raw: object, *, maximum: int = MAX_ID) -> int | None:
    """A positive id (at most `maximum`) from text, or None for anything else."""
    text = raw if isinstance(raw, str) else ""
    if not (0 < len(text) <= _DIGITS and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value <= maximum else None


def parse_number(raw: object) -> int | None:
    """A positive incident number from text, or None for anything else."""
    return parse_id(raw, maximum=MAX_NUMBER)
