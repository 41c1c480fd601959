"""Slack's form bodies decoded at C speed (`bot.slack_body`) give Bolt exactly the request
its own parsing would: the same fields for any text, the same body and context for each
shape Slack sends, and the same refusal for a body that is not a Slack payload."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.slack_body import FORM, form_fields, slack_request

FORM_HEADERS = {"Content-Type": FORM, "X-Slack-Signature": "v0=x"}
JSON_HEADERS = {"Content-Type": "application/json"}

# Text as a form body may hold it: escapes good and bad, separators, non-ASCII.
pieces = st.sampled_from(["%", "%4", "%41", "%e2%80%99", "%C3", "+", "&", "=", "\\", "\\x41", "ü"])
form_text = st.lists(st.one_of(pieces, st.text(max_size=5)), max_size=30).map("".join)


@given(form_text)
def test_any_text_decodes_as_parse_qsl_decodes_it_or_is_left_to_it(text: str) -> None:
    fields = form_fields(text)
    assert fields is None or fields == parse_qsl(text, keep_blank_values=True)


@given(st.dictionaries(st.text(), st.text(), max_size=5))
def test_every_form_a_client_encodes_is_decoded_here(form: dict[str, str]) -> None:
    body = urlencode(form)
    assert form_fields(body) == parse_qsl(body, keep_blank_values=True)


def _block_suggestion() -> dict[str, Any]:
    label = "Zoë’s “quoted” text & more = yes / no \\ 100% + more"
    return {
        "type": "block_suggestion",
        "team": {"id": "T0LARKSPUR", "domain": "larkspur"},
        "user": {"id": "U0TCHPATEL", "team_id": "T0LARKSPUR"},
        "api_app_id": "A0VIGIL",
        "action_id": "pupil_search",
        "block_id": "pupil",
        "value": "Zoë o'ne",
        "view": {"id": "V1", "blocks": [{"label": {"type": "plain_text", "text": label}}]},
    }


SHAPES = {
    "block_suggestion": (urlencode({"payload": json.dumps(_block_suggestion())}), FORM_HEADERS),
    "slash command": (
        urlencode({"command": "/concern", "text": "login", "team_id": "T1", "user_id": "U1"}),
        FORM_HEADERS,
    ),
    "event (JSON)": (
        json.dumps({"type": "event_callback", "team_id": "T1", "event": {"type": "x"}}),
        JSON_HEADERS,
    ),
    "non-ASCII form": ("command=%2Fconcern&text=Zo\u00eb&team_id=T1", FORM_HEADERS),
    "malformed escape": ("command=%2Fconcern&text=100%&team_id=T1", FORM_HEADERS),
    "empty payload": ("payload=", FORM_HEADERS),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_bolt_gets_the_request_its_own_parsing_would_make(shape: str) -> None:
    text, headers = SHAPES[shape]
    try:
        bolt = AsyncBoltRequest(body=text, query="", headers=headers)  # type: ignore[arg-type]
    except ValueError:
        with pytest.raises(ValueError):
            slack_request(text, query="", headers=headers)
        return
    ours = slack_request(text, query="", headers=headers)
    assert (ours.raw_body, ours.body, ours.headers, ours.content_type, ours.mode) == (
        bolt.raw_body,
        bolt.body,
        bolt.headers,
        bolt.content_type,
        bolt.mode,
    )
    assert dict(ours.context) == dict(bolt.context)


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '"text"'])
def test_a_payload_that_is_not_a_slack_object_is_refused_as_bolt_refuses_it(
    payload: str,
) -> None:
    text = urlencode({"payload": payload})
    with pytest.raises((ValueError, AttributeError, TypeError)) as bolts:
        AsyncBoltRequest(body=text, query="", headers=FORM_HEADERS)  # type: ignore[arg-type]
    with pytest.raises(bolts.type):
        slack_request(text, query="", headers=FORM_HEADERS)
