"""Signed requests of shapes Slack never sends are refused with a 400, never a 500.

Each real request Vigil receives (a slash command, the typeahead, a submission, a
button, an event) is captured from the simulator, then sent again, correctly signed,
with one field at a time replaced by a value of the wrong type. Vigil answers each with
a clean status below 500 and stores nothing it should not.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from testing.harness import Harness
from testing.simulator import FORM, JSON
from tests.support.school import DSL
from tests.support.slack import file_concern

DROP = object()  # the field left out
ODD_VALUES: list[Any] = [DROP, None, 0, "x", [], {}, [{"x": 1}], True, 2**70]
# A slash command is a form: every value is text, so a field is empty or missing.
ODD_FORM_VALUES: list[Any] = [DROP, ""]


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 3) -> Iterator[tuple[Any, ...]]:
    """Every key path into `value` (dicts and the first item of lists), to `depth`."""
    if depth == 0:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key), depth - 1)
    elif isinstance(value, list) and value:
        yield (*prefix, 0)
        yield from _paths(value[0], (*prefix, 0), depth - 1)


def _replaced(payload: Any, path: tuple[Any, ...], new: Any) -> Any:
    copied = copy.deepcopy(payload)
    target = copied
    for key in path[:-1]:
        target = target[key]
    if new is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return copied


def _get(payload: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        payload = payload[key]
    return payload


def _encode(kind: str, payload: Any) -> tuple[bytes, str]:
    if kind == "form":
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        return urllib.parse.urlencode(form).encode(), FORM
    if kind == "interactive":
        return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode(), FORM
    return json.dumps(payload).encode(), JSON


async def captured_requests(school: Harness) -> list[tuple[str, Any]]:
    """What Slack sends Vigil in a morning's use, as (encoding, payload)."""
    sent: list[tuple[bytes, str]] = []
    real_send = school.slack.send_raw

    async def recording(body: bytes, **kwargs: Any) -> Any:
        sent.append((body, str(kwargs.get("content_type"))))
        return await real_send(body, **kwargs)

    school.slack.send_raw = recording  # type: ignore[method-assign]
    try:
        await file_concern(school)
        channel = school.standin.dm_channel_for(DSL)
        (dm,) = school.standin.messages_in(channel)
        await school.slack.click_button(DSL, dm, "alert_mark_read", channel_id=channel)
        await school.slack.event({"type": "app_home_opened", "user": DSL, "tab": "home"})
        await school.slack.slash_command(DSL, "login")
    finally:
        school.slack.send_raw = real_send  # type: ignore[method-assign]
    requests = []
    for body, content_type in sent:
        if content_type == JSON:
            requests.append(("json", json.loads(body)))
            continue
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if "payload" in form:
            requests.append(("interactive", json.loads(form["payload"])))
        else:
            requests.append(("form", form))
    return requests


async def test_signed_requests_of_shapes_slack_never_sends_get_a_clean_answer(
    school: Harness,
) -> None:
    requests = await captured_requests(school)
    kinds = {p.get("type") or p.get("command") for _, p in requests}
    assert {"/concern", "block_suggestion", "view_submission", "block_actions"} <= kinds
    assert "event_callback" in kinds
    crashes: list[str] = []
    for encoding, payload in requests:
        for path in _paths(payload):
            for odd in ODD_FORM_VALUES if encoding == "form" else ODD_VALUES:
                if odd is not DROP and type(odd) is type(_get(payload, path)) and odd != "":
                    continue  # another value of the right type is not another shape
                if encoding == "form" and path != ("trigger_id",):
                    # Slack gives every command a new trigger id; only the shape is odd.
                    user = str(payload.get("user_id"))
                    payload = {**payload, "trigger_id": school.standin.register_trigger(user)}
                body, content_type = _encode(encoding, _replaced(payload, path, odd))
                response = await school.slack.send_raw(
                    body, content_type=content_type, timestamp=int(time.time())
                )
                if response.status >= 500:
                    kind = payload.get("type") or payload.get("command")
                    crashes.append(f"{kind} {'.'.join(map(str, path))}={odd!r}: {response.status}")
    assert crashes == [], "\n".join(crashes[:40]) + f"\n({len(crashes)} in all)"
