"""Block Kit checks Slack makes on messages and views, and the ids Slack fills in.

:func:`validate_blocks` and :func:`validate_view` return Slack-style
``response_metadata`` messages (``[ERROR] ... [json-pointer:/view/...]``); an empty
list means Slack would accept the payload. :func:`fill_ids` gives blocks and
interactive elements the random ``block_id`` / ``action_id`` Slack stores.
"""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any


def _text_of(obj: Any) -> str:
    """The ``text`` of a text object, or "" if there is none."""
    if isinstance(obj, dict):
        text = obj.get("text")
        return text if isinstance(text, str) else ""
    return ""


def _too_long(value: str, limit: int, pointer: str) -> str | None:
    if len(value) > limit:
        return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"
    return None


def _validate_options(options: Any, pointer: str) -> list[str]:
    errors: list[str] = []
    if not isinstance(options, list):
        return errors
    if len(options) > 100:
        errors.append(f"[ERROR] no more than 100 items allowed [json-pointer:{pointer}]")
    for i, option in enumerate(options):
        if not isinstance(option, dict):
            continue
        for problem in (
            _too_long(_text_of(option.get("text")), 75, f"{pointer}/{i}/text/text"),
            _too_long(str(option.get("value", "")), 150, f"{pointer}/{i}/value"),
        ):
            if problem:
                errors.append(problem)
    return errors


def _validate_element(element: Any, pointer: str) -> list[str]:
    errors: list[str] = []
    if not isinstance(element, dict):
        return errors
    checks = [
        _too_long(str(element.get("action_id", "")), 255, f"{pointer}/action_id"),
        _too_long(_text_of(element.get("placeholder")), 150, f"{pointer}/placeholder/text"),
        _too_long(_text_of(element.get("text")), 75, f"{pointer}/text/text")
        if element.get("type") == "button"
        else None,
    ]
    max_length = element.get("max_length")
    if isinstance(max_length, int) and max_length > 3000:
        checks.append(f"[ERROR] must be less than 3001 [json-pointer:{pointer}/max_length]")
    errors.extend(problem for problem in checks if problem)
    errors.extend(_validate_options(element.get("options"), f"{pointer}/options"))
    for g, group in enumerate(element.get("option_groups") or []):
        if isinstance(group, dict):
            errors.extend(
                _validate_options(group.get("options"), f"{pointer}/option_groups/{g}/options")
            )
    return errors


def validate_blocks(blocks: Any, pointer: str, *, max_blocks: int) -> list[str]:
    """Check Block Kit limits Slack enforces; return Slack-style error messages.

    Covers the limits most likely to bite a real app: block count, duplicate
    ``block_id``, section/header/label text lengths, option counts and lengths.
    """
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{pointer}]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{pointer}/{i}"
        if not isinstance(block, dict) or "type" not in block:
            errors.append(f"[ERROR] missing required field: type [json-pointer:{here}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen:
                errors.append(f"[ERROR] duplicate block_id [json-pointer:{here}/block_id]")
            seen.add(block_id)
            if problem := _too_long(block_id, 255, f"{here}/block_id"):
                errors.append(problem)
        kind = block["type"]
        if kind == "section":
            if problem := _too_long(_text_of(block.get("text")), 3000, f"{here}/text/text"):
                errors.append(problem)
            fields = block.get("fields") or []
            if len(fields) > 10:
                errors.append(f"[ERROR] no more than 10 items allowed [json-pointer:{here}/fields]")
            for f, fld in enumerate(fields):
                if problem := _too_long(_text_of(fld), 2000, f"{here}/fields/{f}/text"):
                    errors.append(problem)
            errors.extend(_validate_element(block.get("accessory"), f"{here}/accessory"))
        elif kind == "header":
            if problem := _too_long(_text_of(block.get("text")), 150, f"{here}/text/text"):
                errors.append(problem)
        elif kind == "input":
            for problem in (
                _too_long(_text_of(block.get("label")), 2000, f"{here}/label/text"),
                _too_long(_text_of(block.get("hint")), 2000, f"{here}/hint/text"),
            ):
                if problem:
                    errors.append(problem)
            if "element" not in block:
                errors.append(f"[ERROR] missing required field: element [json-pointer:{here}]")
            errors.extend(_validate_element(block.get("element"), f"{here}/element"))
        elif kind in ("actions", "context"):
            elements = block.get("elements") or []
            limit = 25 if kind == "actions" else 10
            if len(elements) > limit:
                errors.append(
                    f"[ERROR] no more than {limit} items allowed [json-pointer:{here}/elements]"
                )
            for e, element in enumerate(elements):
                errors.extend(_validate_element(element, f"{here}/elements/{e}"))
    return errors


def validate_view(view: Any, *, kind: str) -> list[str]:
    """Check a view payload against Slack's modal / App Home limits.

    ``kind`` is "modal" or "home". Returns Slack-style ``response_metadata``
    messages; an empty list means the view is acceptable.
    """
    if not isinstance(view, dict):
        return ["[ERROR] missing required field: view [json-pointer:/view]"]
    errors: list[str] = []
    if view.get("type") != kind:
        errors.append(f"[ERROR] must be '{kind}' [json-pointer:/view/type]")
    if kind == "modal":
        if "title" not in view:
            errors.append("[ERROR] missing required field: title [json-pointer:/view]")
        for name in ("title", "submit", "close"):
            if problem := _too_long(_text_of(view.get(name)), 24, f"/view/{name}/text"):
                errors.append(problem)
        blocks = view.get("blocks") or []
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and "submit" not in view:
            errors.append(
                "[ERROR] must provide a submit property when using input blocks "
                "[json-pointer:/view]"
            )
    if "blocks" not in view:
        errors.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    for name, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        value = view.get(name)
        if isinstance(value, str) and (problem := _too_long(value, limit, f"/view/{name}")):
            errors.append(problem)
    errors.extend(validate_blocks(view.get("blocks"), "/view/blocks", max_blocks=100))
    return errors


def fill_ids(blocks: Any) -> Any:
    """Give blocks and interactive elements generated ids, as Slack does.

    Slack stores a random ``block_id`` on every block that lacks one and a
    random ``action_id`` on every element that lacks one; state values and
    interaction payloads are keyed by those generated ids.
    """
    if not isinstance(blocks, list):
        return blocks
    blocks = copy.deepcopy(blocks)
    for block in blocks:
        if not isinstance(block, dict):
            continue
        block.setdefault(
            "block_id", "".join(secrets.choice(string.ascii_letters) for _ in range(5))
        )
        elements: list[Any] = []
        if isinstance(block.get("element"), dict):
            elements.append(block["element"])
        if isinstance(block.get("accessory"), dict) and block["accessory"].get("type") != "image":
            elements.append(block["accessory"])
        if block.get("type") == "actions":
            elements.extend(e for e in block.get("elements") or [] if isinstance(e, dict))
        for element in elements:
            element.setdefault(
                "action_id", "".join(secrets.choice(string.ascii_letters) for _ in range(5))
            )
    return blocks
