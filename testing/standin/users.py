"""The workspace's members: ``auth.test``, ``users.info`` and ``users.lookupByEmail``.

:class:`UsersApi` keeps the directory (:attr:`UsersApi.users`, with the app's bot user)
that the other families look people up in, and the app's DM channel with each member.
"""

from __future__ import annotations

import copy
import hashlib
import time
from typing import Any

from testing.standin.calls import SlackApiFailure
from testing.standin.core import WORKSPACE_URL, StandInCore, slack_method


def stable_id(prefix: str, key: str) -> str:
    """An id that is the same for the same ``key`` (e.g. a DM channel for a user)."""
    return prefix + hashlib.sha1(key.encode()).hexdigest()[:10].upper()


def user_object(
    user_id: str,
    *,
    email: str | None,
    name: str,
    team_id: str,
    deleted: bool,
    is_bot: bool,
) -> dict[str, Any]:
    """A user as ``users.info`` returns it."""
    handle = (email.split("@", 1)[0] if email else name).lower()
    profile: dict[str, Any] = {
        "real_name": name,
        "display_name": name,
        "real_name_normalized": name,
        "display_name_normalized": name,
        "team": team_id,
    }
    if email:
        profile["email"] = email
    return {
        "id": user_id,
        "team_id": team_id,
        "name": handle,
        "deleted": deleted,
        "real_name": name,
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "is_admin": False,
        "is_owner": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": int(time.time()),
        "profile": profile,
    }


class UsersApi(StandInCore):
    """The directory of workspace members and the methods that read it."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.users: dict[str, dict[str, Any]] = {}
        self._dm_users: dict[str, str] = {}  # DM channel id → the member it is with
        self.users[self.bot_user_id] = user_object(
            self.bot_user_id,
            email=None,
            name="vigil",
            team_id=self.team_id,
            deleted=False,
            is_bot=True,
        )

    def add_user(
        self,
        user_id: str,
        *,
        email: str,
        name: str,
        team_id: str | None = None,
        deleted: bool = False,
    ) -> None:
        """Add (or replace) a workspace member.

        ``name`` is the person's real/display name; Slack's ``name`` (the
        handle) is derived from the email's local part.
        """
        self.users[user_id] = user_object(
            user_id,
            email=email,
            name=name,
            team_id=team_id or self.team_id,
            deleted=deleted,
            is_bot=False,
        )
        self._dm_users[self.dm_channel_for(user_id)] = user_id

    def dm_channel_for(self, user_id: str) -> str:
        """The app's DM channel id with ``user_id`` (stable, as conversations.open returns)."""
        return stable_id("D", f"{self.team_id}:{user_id}")

    @slack_method("auth.test")
    async def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": WORKSPACE_URL,
            "team": self.team_name,
            "user": "vigil",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    @slack_method("users.lookupByEmail")
    async def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").strip().lower()
        for user in self.users.values():
            if email and str(user["profile"].get("email", "")).lower() == email:
                return {"ok": True, "user": copy.deepcopy(user)}
        raise SlackApiFailure("users_not_found")

    @slack_method("users.info")
    async def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}
