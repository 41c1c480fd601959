"""The ``state.values`` Slack sends with a view, built from what a user entered.

:func:`build_state_values` turns ``{block_id: value}`` into the state Slack reports for
each stateful element (text inputs, selects, pickers, checkboxes ...), starting from each
element's initial value as Slack does; :func:`find_element` finds an interactive element
by its ``action_id``.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

# Element type -> the state key Slack uses for it.
_VALUE_KEYS = {
    "plain_text_input": "value",
    "number_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "rich_text_input": "rich_text_value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "checkboxes": "selected_options",
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}
# State key -> the element property that pre-fills it.
_INITIAL_KEYS = {
    "value": "initial_value",
    "rich_text_value": "initial_value",
    "selected_option": "initial_option",
    "selected_options": "initial_options",
    "selected_user": "initial_user",
    "selected_users": "initial_users",
    "selected_conversation": "initial_conversation",
    "selected_conversations": "initial_conversations",
    "selected_channel": "initial_channel",
    "selected_channels": "initial_channels",
    "selected_date": "initial_date",
    "selected_time": "initial_time",
    "selected_date_time": "initial_date_time",
}
_LIST_KEYS = {
    "selected_options",
    "selected_users",
    "selected_conversations",
    "selected_channels",
}
_STATIC_OPTION_TYPES = {"static_select", "multi_static_select", "radio_buttons", "checkboxes"}
_NOT_STATEFUL = {"button", "overflow", "image", "workflow_button"}


def _empty_state_value(element: dict[str, Any]) -> dict[str, Any]:
    """The state Slack reports for an untouched element (its initial value, if any)."""
    kind = element.get("type", "")
    key = _VALUE_KEYS.get(kind)
    if key is None:
        raise ValueError(f"don't know the state shape of element type {kind!r}")
    initial = element.get(_INITIAL_KEYS[key])
    if initial is None and key in _LIST_KEYS:
        initial = []
    return {"type": kind, key: copy.deepcopy(initial)}


def _all_options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _as_option(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """Turn a value string or option dict into the option object Slack would report."""
    kind = element.get("type")
    if kind in _STATIC_OPTION_TYPES:
        wanted = value.get("value") if isinstance(value, dict) else value
        for option in _all_options(element):
            if option.get("value") == wanted:
                return copy.deepcopy(option)
        raise ValueError(f"{kind} {element.get('action_id')!r} has no option with value {wanted!r}")
    if isinstance(value, dict):
        option = copy.deepcopy(value)
        if isinstance(option.get("text"), str):
            option["text"] = {"type": "plain_text", "text": option["text"]}
        option.setdefault("text", {"type": "plain_text", "text": str(option.get("value"))})
        return option
    return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}


def _state_value(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """The state Slack reports for ``element`` after the user entered ``value``."""
    state = _empty_state_value(element)
    key = next(k for k in state if k != "type")
    if value is None:
        return state
    if key == "selected_option":
        state[key] = _as_option(element, value)
    elif key == "selected_options":
        values = value if isinstance(value, list | tuple) else [value]
        state[key] = [_as_option(element, v) for v in values]
    elif key in ("selected_users", "selected_conversations", "selected_channels"):
        state[key] = list(value) if isinstance(value, list | tuple) else [value]
    elif key == "selected_date":
        state[key] = value.isoformat() if isinstance(value, dt.date) else str(value)
    elif key == "selected_time":
        state[key] = value.strftime("%H:%M") if isinstance(value, dt.time) else str(value)
    elif key == "selected_date_time":
        state[key] = int(value.timestamp()) if isinstance(value, dt.datetime) else int(value)
    elif key == "value":
        state[key] = str(value)
    else:
        state[key] = value
    return state


def _stateful_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Elements of a block that Slack reports in ``state.values``."""
    if block.get("type") == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    candidates: list[Any] = []
    if block.get("type") == "actions":
        candidates = list(block.get("elements") or [])
    elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
        candidates = [block["accessory"]]
    return [
        e
        for e in candidates
        if isinstance(e, dict)
        and e.get("type") in _VALUE_KEYS
        and e.get("type") not in _NOT_STATEFUL
    ]


def build_state_values(view: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Build ``view.state.values`` as Slack would send it.

    ``values`` maps block_id -> what the user entered: a string for text
    inputs, a value string or ``{"text", "value"}`` option for selects and
    radio buttons, a list of those for multi-selects and checkboxes, user ids
    for user pickers, ``"YYYY-MM-DD"``/``"HH:MM"``/epoch int (or date/time/
    datetime objects) for pickers. For a block holding several elements (an
    actions block), pass a dict mapping action_id -> value. Blocks not in
    ``values`` get their untouched state (initial value, else empty).
    """
    state: dict[str, Any] = {}
    known: set[str] = set()
    for block in view.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        elements = _stateful_elements(block)
        block_id = block.get("block_id")
        if not elements or not isinstance(block_id, str):
            continue
        known.add(block_id)
        entered = values.get(block_id)
        per_action: Mapping[str, Any]
        if len(elements) > 1:
            per_action = entered if isinstance(entered, Mapping) else {}
        else:
            per_action = {elements[0].get("action_id", ""): entered}
        state[block_id] = {
            str(e.get("action_id", "")): _state_value(e, per_action.get(e.get("action_id", "")))
            for e in elements
        }
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(
            f"no stateful block with block_id {unknown} in the view; have {sorted(known)}"
        )
    return state


def find_element(blocks: Any, action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Find (block, element) with ``action_id`` among Block Kit blocks."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        elements: list[Any] = (
            list(block.get("elements") or []) if block.get("type") == "actions" else []
        )
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    return None
