"""The shapes of what Slack sends, checked before a listener sees a request.

Vigil's listeners read Slack's payloads as Slack documents them: `user.id` is a string,
`actions` a list of objects, a view's state `values` objects of objects. A correctly
signed request of another shape (someone holding the signing secret, or a replayed and
altered capture) used to reach the listeners and end in a 500. `shape_problem` names the
first field that is not as Slack sends it (its path, never its value), and the endpoint
answers 400.

Fields Vigil does not know are ignored; a known field, when present, must have Slack's
type. Required fields are only those Slack always sends and Vigil relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: A check returns None when `value` fits, else the problem (a path and what is wrong).
Check = Callable[[Any, str], str | None]

# A timestamp in seconds, or an id, that any real value fits under (2**70 does not).
_LARGEST_NUMBER = 2**53


def _is(kind: type, name: str) -> Check:
    def check(value: Any, path: str) -> str | None:
        return None if isinstance(value, kind) else f"{path}: not {name}"

    return check


TEXT = _is(str, "text")
FLAG = _is(bool, "true or false")


def _number(value: Any, path: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{path}: not a number"
    if not -_LARGEST_NUMBER < value < _LARGEST_NUMBER:
        return f"{path}: out of range"
    return None


NUMBER: Check = _number
ANY_OBJECT = _is(dict, "an object")


def optional(check: Check) -> Check:
    """`check`, or null."""

    def nullable(value: Any, path: str) -> str | None:
        return None if value is None else check(value, path)

    return nullable


def list_of(check: Check, *, non_empty: bool = False) -> Check:
    """A list whose every item passes `check`."""

    def items(value: Any, path: str) -> str | None:
        if not isinstance(value, list):
            return f"{path}: not a list"
        if non_empty and not value:
            return f"{path}: empty"
        for index, item in enumerate(value):
            if problem := check(item, f"{path}[{index}]"):
                return problem
        return None

    return items


def object_of(fields: Mapping[str, Check], *, required: tuple[str, ...] = ()) -> Check:
    """An object whose known `fields` pass their checks; `required` ones must be there."""

    def members(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{path}: not an object"
        for name in required:
            if name not in value:
                return f"{path}.{name}: missing"
        for name, check in fields.items():
            if name in value and (problem := check(value[name], f"{path}.{name}")):
                return problem
        return None

    return members


def mapping_of(check: Check) -> Check:
    """An object with any keys (text), whose every value passes `check`."""

    def values(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{path}: not an object"
        for key, item in value.items():
            if problem := check(item, f"{path}.{key}"):
                return problem
        return None

    return values


USER = object_of({"id": TEXT, "name": TEXT, "username": TEXT, "team_id": TEXT}, required=("id",))
TEAM = object_of({"id": TEXT, "domain": TEXT, "enterprise_id": TEXT}, required=("id",))
OPTION = object_of({"value": TEXT, "text": ANY_OBJECT}, required=("value",))
ELEMENT_STATE = object_of(
    {
        "type": TEXT,
        "value": optional(TEXT),
        "selected_option": optional(OPTION),
        "selected_options": list_of(OPTION),
        "selected_users": list_of(TEXT),
        "selected_user": optional(TEXT),
        "selected_conversation": optional(TEXT),
        "selected_channel": optional(TEXT),
        "selected_date": optional(TEXT),
        "selected_time": optional(TEXT),
        "selected_date_time": optional(NUMBER),
    }
)
STATE = object_of({"values": mapping_of(mapping_of(ELEMENT_STATE))})
BLOCK = object_of({"type": TEXT, "block_id": TEXT, "elements": list_of(ANY_OBJECT)})
VIEW = object_of(
    {
        "id": TEXT,
        "team_id": TEXT,
        "type": TEXT,
        "callback_id": TEXT,
        "hash": TEXT,
        "private_metadata": TEXT,
        "external_id": TEXT,
        "state": STATE,
        "blocks": list_of(BLOCK),
        "root_view_id": optional(TEXT),
        "previous_view_id": optional(TEXT),
        "app_id": TEXT,
        "app_installed_team_id": TEXT,
        "bot_id": TEXT,
        "title": ANY_OBJECT,
        "submit": optional(ANY_OBJECT),
        "close": optional(ANY_OBJECT),
        "notify_on_close": FLAG,
        "clear_on_close": FLAG,
    },
    required=("id", "type"),
)
ACTION = object_of(
    {
        "action_id": TEXT,
        "block_id": TEXT,
        "type": TEXT,
        "value": TEXT,
        "action_ts": TEXT,
        "selected_option": optional(OPTION),
        "selected_options": list_of(OPTION),
        "text": ANY_OBJECT,
        "style": TEXT,
    },
    required=("action_id",),
)
MESSAGE = object_of(
    {
        "ts": TEXT,
        "text": TEXT,
        "type": TEXT,
        "user": TEXT,
        "bot_id": TEXT,
        "team": TEXT,
        "blocks": list_of(BLOCK),
        "metadata": ANY_OBJECT,
    }
)
CHANNEL = object_of({"id": TEXT, "name": TEXT}, required=("id",))
CONTAINER = object_of(
    {
        "type": TEXT,
        "view_id": TEXT,
        "message_ts": TEXT,
        "channel_id": TEXT,
        "is_ephemeral": FLAG,
    }
)
INTERACTIVE_FIELDS: dict[str, Check] = {
    "type": TEXT,
    "team": optional(TEAM),
    "user": USER,
    "api_app_id": TEXT,
    "token": TEXT,
    "trigger_id": TEXT,
    "response_url": TEXT,
    "response_urls": list_of(ANY_OBJECT),
    "container": CONTAINER,
    "channel": optional(CHANNEL),
    "message": MESSAGE,
    "view": VIEW,
    "state": STATE,
    "actions": list_of(ACTION, non_empty=True),
    "action_id": TEXT,
    "block_id": TEXT,
    "value": TEXT,
    "enterprise": optional(ANY_OBJECT),
    "is_enterprise_install": FLAG,
}
INTERACTIVE_REQUIRED: dict[str, tuple[str, ...]] = {
    "block_actions": ("user", "actions"),
    "block_suggestion": ("user", "action_id", "block_id", "value"),
    "view_submission": ("user", "view"),
    "view_closed": ("user", "view"),
}
AUTHORIZATION = object_of(
    {
        "team_id": optional(TEXT),
        "user_id": TEXT,
        "enterprise_id": optional(TEXT),
        "is_bot": FLAG,
        "is_enterprise_install": FLAG,
    }
)
EVENT = object_of(
    {
        "type": TEXT,
        "user": TEXT,
        "tab": TEXT,
        "channel": TEXT,
        "event_ts": TEXT,
        "view": VIEW,
    },
    required=("type",),
)
EVENT_CALLBACK = object_of(
    {
        "type": TEXT,
        "token": TEXT,
        "team_id": TEXT,
        "api_app_id": TEXT,
        "event": EVENT,
        "event_id": TEXT,
        "event_time": NUMBER,
        "authorizations": list_of(AUTHORIZATION),
        "context_team_id": optional(TEXT),
        "context_enterprise_id": optional(TEXT),
        "enterprise_id": optional(TEXT),
        "is_ext_shared_channel": FLAG,
        "event_context": TEXT,
    },
    required=("event", "team_id"),
)
# Events whose fields Vigil's listeners rely on, beyond `type`.
EVENT_REQUIRED: dict[str, tuple[str, ...]] = {"app_home_opened": ("user", "tab")}
URL_VERIFICATION = object_of({"challenge": TEXT, "token": TEXT}, required=("challenge",))
COMMAND_REQUIRED = ("command", "user_id", "team_id", "trigger_id")


def shape_problem(body: Mapping[str, Any]) -> str | None:
    """The first field of a parsed Slack request that is not as Slack sends it, or None."""
    if "command" in body:  # a slash command: a form, every value text
        for name in COMMAND_REQUIRED:
            if not isinstance(body.get(name), str) or not body[name]:
                return f"{name}: missing"
        return None
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        return "type: missing"
    if kind == "event_callback":
        if problem := EVENT_CALLBACK(body, "body"):
            return problem
        event = body["event"]
        for name in EVENT_REQUIRED.get(event["type"], ()):
            if name not in event:
                return f"body.event.{name}: missing"
        return None
    if kind == "url_verification":
        return URL_VERIFICATION(body, "body")
    if kind == "app_rate_limited":
        return None
    required = INTERACTIVE_REQUIRED.get(kind, ("user",))
    return object_of(INTERACTIVE_FIELDS, required=required)(body, "payload")
