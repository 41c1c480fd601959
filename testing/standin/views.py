"""Views: ``views.open``, ``views.push``, ``views.update`` and ``views.publish`` (App Home).

:class:`ViewsApi` keeps every view by id (:attr:`ViewsApi.views`), who it was opened for
(:attr:`ViewsApi.view_users`) and each member's App Home (:attr:`ViewsApi.home_views`).
Trigger ids come from :meth:`ViewsApi.register_trigger` (the simulator issues one with
every interaction), are single-use and, with ``trigger_ttl``, expire as Slack's do.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

from testing.standin.blocks import fill_ids, validate_view
from testing.standin.calls import SlackApiFailure
from testing.standin.core import slack_method
from testing.standin.users import UsersApi

_ALNUM_UPPER = string.ascii_uppercase + string.digits
_TRIGGER_RE = re.compile(r"^\d+\.\d+\.\w+$")


@dataclass
class _Trigger:
    user_id: str
    view_id: str | None
    issued_at: float


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(length))


class ViewsApi(UsersApi):
    """Modals and App Home views, as Slack stores them."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.view_users: dict[str, str] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._used_triggers: set[str] = set()

    def _forget_state(self) -> None:
        super()._forget_state()
        self.views.clear()
        self.home_views.clear()
        self.view_users.clear()
        self._triggers.clear()
        self._used_triggers.clear()

    def register_trigger(self, user_id: str, *, view_id: str | None = None) -> str:
        """Issue a fresh trigger id for ``user_id`` (optionally from inside ``view_id``)."""
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(user_id, view_id, time.monotonic())
        return trigger_id

    def _check_trigger(self, params: dict[str, Any]) -> _Trigger | None:
        trigger_id = params.get("trigger_id")
        if not isinstance(trigger_id, str) or not _TRIGGER_RE.match(trigger_id):
            raise SlackApiFailure("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise SlackApiFailure("exchanged_trigger_id")
        trigger = self._triggers.get(trigger_id)
        if (
            trigger is not None
            and self.trigger_ttl is not None
            and time.monotonic() - trigger.issued_at > self.trigger_ttl
        ):
            raise SlackApiFailure("expired_trigger_id")
        return trigger

    def _new_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _build_view(
        self,
        view: dict[str, Any],
        *,
        view_id: str,
        root_view_id: str,
        previous_view_id: str | None,
        state: dict[str, Any] | None = None,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        team_id = team_id or self.team_id  # the workspace of the person it is opened for
        stored: dict[str, Any] = {
            "id": view_id,
            "team_id": team_id,
            "type": view.get("type"),
            "blocks": fill_ids(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "state": {"values": state or {}},
            "hash": self._new_hash(),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": previous_view_id,
            "root_view_id": root_view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id") or "",
            "app_installed_team_id": team_id,
            "bot_id": self.bot_id,
        }
        for name in ("title", "submit", "close"):
            if name in view:
                stored[name] = copy.deepcopy(view[name])
        return stored

    def _team_of(self, user_id: str | None) -> str:
        """The workspace a member belongs to (the stand-in's own if not known)."""
        user = self.users.get(user_id or "")
        return str(user["team_id"]) if user else self.team_id

    def _check_new_view(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        view = params.get("view")
        if errors := validate_view(view, kind=kind):
            raise SlackApiFailure("invalid_arguments", messages=errors)
        assert isinstance(view, dict)
        external_id = view.get("external_id")
        if external_id and any(v.get("external_id") == external_id for v in self.views.values()):
            raise SlackApiFailure("duplicate_external_id")
        return view

    def _store_view(self, view: dict[str, Any], user_id: str | None) -> dict[str, Any]:
        self.views[view["id"]] = view
        if user_id:
            self.view_users[view["id"]] = user_id
        return {"ok": True, "view": copy.deepcopy(view)}

    @slack_method("views.open")
    async def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._check_trigger(params)
        view = self._check_new_view(params, "modal")
        view_id = _random_id("V")
        stored = self._build_view(
            view,
            view_id=view_id,
            root_view_id=view_id,
            previous_view_id=None,
            team_id=self._team_of(trigger.user_id if trigger else None),
        )
        self._used_triggers.add(params["trigger_id"])
        return self._store_view(stored, trigger.user_id if trigger else None)

    @slack_method("views.push")
    async def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._check_trigger(params)
        view = self._check_new_view(params, "modal")
        parent = self.views.get(trigger.view_id) if trigger and trigger.view_id else None
        depth = 1
        walk = parent
        while walk is not None:
            depth += 1
            walk = self.views.get(walk.get("previous_view_id") or "")
        if depth > 3:
            raise SlackApiFailure("push_limit_reached")
        view_id = _random_id("V")
        stored = self._build_view(
            view,
            view_id=view_id,
            root_view_id=parent["root_view_id"] if parent else view_id,
            previous_view_id=parent["id"] if parent else None,
            team_id=self._team_of(trigger.user_id if trigger else None),
        )
        self._used_triggers.add(params["trigger_id"])
        return self._store_view(stored, trigger.user_id if trigger else None)

    def _find_view(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if view_id:
            found = self.views.get(str(view_id))
        elif external_id:
            found = next(
                (v for v in self.views.values() if v.get("external_id") == external_id), None
            )
        else:
            raise SlackApiFailure(
                "invalid_arguments", messages=["[ERROR] view_id or external_id is required"]
            )
        if found is None:
            raise SlackApiFailure("not_found")
        return found

    def replace_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Replace the content of stored view ``view_id`` as views.update does.

        Keeps id, root/previous ids and the state values of blocks that are
        still present; issues a new hash. Returns the stored view.
        """
        current = self.views[view_id]
        stored = self._build_view(
            view,
            view_id=view_id,
            root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
            team_id=current.get("team_id"),
        )
        if not view.get("external_id"):
            stored["external_id"] = current.get("external_id", "")
        block_ids = {b.get("block_id") for b in stored["blocks"] if isinstance(b, dict)}
        old_values = current.get("state", {}).get("values", {})
        stored["state"] = {"values": {k: v for k, v in old_values.items() if k in block_ids}}
        self.views[view_id] = stored
        if current["type"] == "home":
            for user_id, home in self.home_views.items():
                if home["id"] == view_id:
                    self.home_views[user_id] = stored
        return stored

    @slack_method("views.update")
    async def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        current = self._find_view(params)
        given_hash = params.get("hash")
        if given_hash and given_hash != current["hash"]:
            raise SlackApiFailure("hash_conflict")
        view = params.get("view")
        kind = current["type"] if isinstance(current.get("type"), str) else "modal"
        if errors := validate_view(view, kind=kind):
            raise SlackApiFailure("invalid_arguments", messages=errors)
        assert isinstance(view, dict)
        stored = self.replace_view(current["id"], view)
        return {"ok": True, "view": copy.deepcopy(stored)}

    @slack_method("views.publish")
    async def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user_id") or "")
        if user_id not in self.users:
            raise SlackApiFailure("user_not_found")
        view = params.get("view")
        if errors := validate_view(view, kind="home"):
            raise SlackApiFailure("invalid_arguments", messages=errors)
        assert isinstance(view, dict)
        current = self.home_views.get(user_id)
        if current is not None:
            given_hash = params.get("hash")
            if given_hash and given_hash != current["hash"]:
                raise SlackApiFailure("hash_conflict")
            stored = self.replace_view(current["id"], view)
        else:
            view_id = _random_id("V")
            stored = self._build_view(
                view,
                view_id=view_id,
                root_view_id=view_id,
                previous_view_id=None,
                team_id=self._team_of(user_id),
            )
            self.views[view_id] = stored
            self.view_users[view_id] = user_id
        self.home_views[user_id] = stored
        return {"ok": True, "view": copy.deepcopy(stored)}

    def set_view_state(self, view_id: str, values: dict[str, Any]) -> None:
        """Record what the user has entered in an open view (``state.values``)."""
        self.views[view_id]["state"] = {"values": copy.deepcopy(values)}

    def apply_view_response(self, view_id: str, response: dict[str, Any] | None) -> None:
        """Apply an app's ``view_submission`` response as Slack would.

        ``response_action`` "update" replaces the view, "push" pushes a new one
        on top of it; "errors", "clear" and an empty ack leave views as they are.
        """
        if not response or view_id not in self.views:
            return
        action = response.get("response_action")
        new_view = response.get("view")
        if isinstance(new_view, str):
            new_view = json.loads(new_view)
        if action == "update" and isinstance(new_view, dict):
            self.replace_view(view_id, new_view)
        elif action == "push" and isinstance(new_view, dict):
            parent = self.views[view_id]
            pushed_id = _random_id("V")
            self.views[pushed_id] = self._build_view(
                new_view,
                view_id=pushed_id,
                root_view_id=parent["root_view_id"],
                previous_view_id=view_id,
                team_id=parent.get("team_id"),
            )
            if view_id in self.view_users:
                self.view_users[pushed_id] = self.view_users[view_id]
