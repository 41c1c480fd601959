"""A signed Slack request as Bolt's `AsyncBoltRequest`, its form body decoded at C speed.

Slack sends interactions (a typeahead keystroke, a modal submission) as a form whose one
field is the JSON payload, percent-encoded: the whole modal, ~10 kB. Bolt decodes it with
`urllib.parse.parse_qsl`, whose unquoting is a Python loop over every `%`: a third of a
millisecond per typeahead keystroke, a quarter of the request's CPU. `form_fields` gives
the same fields (tests/bot/test_slack_body.py holds it to `parse_qsl` on any text) with
the bytes decoded by `codecs.escape_decode`; a body it cannot decode that way (non-ASCII,
a malformed escape) goes to `parse_qsl` as before. `slack_request` builds the request
with the body decoded so, exactly as Bolt's `parse_body` would have it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

FORM = "application/x-www-form-urlencoded"  # how Slack sends commands and interactions


def _unquote_plus(text: str) -> str:
    """`urllib.parse.unquote_plus` for ASCII text whose escapes are all well formed
    (raises UnicodeEncodeError or ValueError for any other)."""
    raw = text.replace("+", " ").encode("ascii")
    if b"%" not in raw:
        return raw.decode("ascii")
    escaped = raw.replace(b"\\", b"\\\\").replace(b"%", b"\\x")
    decoded: bytes = codecs.escape_decode(escaped)[0]  # type: ignore[attr-defined]
    return decoded.decode("utf-8", "replace")


def form_fields(body: str) -> list[tuple[str, str]] | None:
    """`parse_qsl(body, keep_blank_values=True)`, or None if `body` is not ASCII with
    well-formed escapes only (the caller then uses `parse_qsl` itself)."""
    fields = []
    try:
        for field in body.split("&"):
            if not field:
                continue
            name, _, value = field.partition("=")
            fields.append((_unquote_plus(name), _unquote_plus(value)))
    except (UnicodeEncodeError, ValueError):
        return None
    return fields


class _Decoded(AsyncBoltRequest):
    """An HTTP-mode request whose body was decoded here; `raw_body` is still the text
    Slack signed (Bolt's own signature check reads it)."""

    def __init__(
        self, *, raw_body: str, body: dict[str, Any], query: str, headers: Mapping[str, str]
    ) -> None:
        super().__init__(body="", query=query, headers=headers)  # type: ignore[arg-type]
        self.raw_body = raw_body
        self.body = body
        self.context = build_async_context(AsyncBoltContext({}), body)


def slack_request(text: str, *, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """The request Bolt dispatches, with the body `parse_body` would give it. Raises what
    Bolt would (ValueError for a payload that is not JSON, AttributeError or TypeError
    for one that is not an object)."""
    form = (headers.get("Content-Type") or "").split(";")[0] == FORM
    fields = form_fields(text) if form and text and not text.startswith("{") else None
    if fields is None:
        return AsyncBoltRequest(body=text, query=query, headers=headers)  # type: ignore[arg-type]
    params = dict(fields)
    body: dict[str, Any]
    if "payload" in text:  # as Bolt's parse_body decides it
        payload = params.get("payload")
        body = json.loads(payload) if payload is not None else {}
    else:
        body = params
    return _Decoded(raw_body=text, body=body, query=query, headers=headers)
