"""Installing the app in many workspaces: Slack's side of the OAuth v2 flow.

:class:`InstallApi` keeps more workspaces than the stand-in's own (:meth:`add_team`,
some of them teams of an Enterprise Grid org), serves the browser's
``/oauth/v2/authorize`` (recorded as ``oauth.v2.authorize``; it consents at once as the
person chosen with :meth:`install_as`, into their team or, org-wide, their org) and the
Web API's ``oauth.v2.access``, which hands out one bot token per installation. Every
method then answers for that token's workspace: ``auth.test`` (its team, its org),
``team.info``; a token is refused (``token_revoked``) once :meth:`uninstall` revokes it.
The stand-in's own ``bot_token`` keeps working as before (single-workspace mode).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from testing.standin.calls import RecordedCall, SlackApiFailure
from testing.standin.core import APP_ID, WORKSPACE_URL, slack_method
from testing.standin.oidc import OidcApi, _with_query

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Team:
    """A workspace the stand-in knows, maybe in an Enterprise Grid org."""

    team_id: str
    name: str
    enterprise_id: str | None = None
    enterprise_name: str | None = None


@dataclass
class _InstallGrant:
    """An authorization code handed to the browser by /oauth/v2/authorize."""

    user_id: str
    team: Team
    org_wide: bool
    scopes: str
    redirect_uri: str
    issued_at: float
    used: bool = False


@dataclass
class Installation:
    """A bot token handed out by oauth.v2.access: the team (or org) it speaks for."""

    token: str
    team: Team
    org_wide: bool
    installer: str
    scopes: str
    revoked: bool = False

    @property
    def team_id(self) -> str | None:
        return None if self.org_wide else self.team.team_id


class InstallApi(OidcApi):
    """Slack's OAuth v2 install flow, and a bot token per installation."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.teams: dict[str, Team] = {self.team_id: Team(self.team_id, self.team_name)}
        self.installations: dict[str, Installation] = {}
        self._installer: tuple[str, str, bool] | None = None  # user, team, org-wide
        self._install_grants: dict[str, _InstallGrant] = {}
        self.install_code_ttl = 600.0

    def _routes(self) -> list[web.RouteDef]:
        return [*super()._routes(), web.get("/oauth/v2/authorize", self._handle_install)]

    def _forget_state(self) -> None:
        super()._forget_state()
        self._install_grants.clear()

    # -- what a test sets up -------------------------------------------------------------

    def add_team(
        self,
        team_id: str,
        name: str,
        *,
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
    ) -> Team:
        """Another workspace (a team of the org ``enterprise_id``, if given)."""
        team = Team(team_id, name, enterprise_id, enterprise_name)
        self.teams[team_id] = team
        return team

    def install_as(self, user_id: str, team_id: str, *, org_wide: bool = False) -> None:
        """Who "the browser" is at /oauth/v2/authorize: ``user_id`` of ``team_id``,
        approving the install for that team or (``org_wide``) for its whole org."""
        if org_wide and self.teams[team_id].enterprise_id is None:
            raise ValueError(f"{team_id} is not in an Enterprise Grid org")
        self._installer = (user_id, team_id, org_wide)

    def token_of(self, team_id: str) -> str:
        """The bot token (not revoked) that speaks for ``team_id``: its own install or its
        org's org-wide one."""
        team = self.teams[team_id]
        for installation in reversed(list(self.installations.values())):
            if installation.revoked:
                continue
            if installation.team_id == team_id or (
                installation.org_wide and installation.team.enterprise_id == team.enterprise_id
            ):
                return installation.token
        raise KeyError(f"the app is not installed in {team_id}")

    def uninstall(self, token: str) -> None:
        """The workspace (or org) removes the app: its token is revoked."""
        self.installations[token].revoked = True

    # -- the browser's authorize step ----------------------------------------------------

    async def _handle_install(self, request: web.Request) -> web.StreamResponse:
        """``GET /oauth/v2/authorize``: approve as :meth:`install_as` chose and redirect
        to ``redirect_uri`` with a single-use code and the state."""
        query = dict(request.query)
        call = self._record("oauth.v2.authorize", query)
        await self._notify()
        if (faulted := await self._apply_fault(request, call, wildcard=False)) is not None:
            return faulted
        problem = None
        if query.get("client_id") != self.client_id:
            problem = "invalid_client_id"
        elif not query.get("scope"):
            problem = "invalid_scope"
        elif not query.get("redirect_uri", "").startswith(("http://", "https://")):
            problem = "bad_redirect_uri"
        elif self._installer is None:
            problem = "not_signed_in"
        if problem is not None:
            page = f"<!doctype html><title>Slack</title><p>{problem}</p>\n"
            response = web.Response(status=400, text=page, content_type="text/html")
            return await self._answer(call, 400, {"ok": False, "error": problem}, response)
        assert self._installer is not None
        user_id, team_id, org_wide = self._installer
        code = f"{secrets.randbelow(10**10)}.{secrets.token_hex(24)}"
        self._install_grants[code] = _InstallGrant(
            user_id=user_id,
            team=self.teams[team_id],
            org_wide=org_wide,
            scopes=query["scope"],
            redirect_uri=query["redirect_uri"],
            issued_at=time.monotonic(),
        )
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        location = _with_query(query["redirect_uri"], **params)
        response = web.Response(status=302, headers={"Location": location})
        summary = {"ok": True, "code": code, "location": location}
        return await self._answer(call, 302, summary, response)

    # -- the Web API -----------------------------------------------------------------------

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if method == "oauth.v2.access":
            return None  # the app's client id and secret authenticate it
        installation = self.installations.get(token or "")
        if installation is not None:
            return "token_revoked" if installation.revoked else None
        return super()._auth_error(method, token)

    @slack_method("oauth.v2.access", with_request=True)
    async def _oauth_v2_access(self, call: RecordedCall, request: web.Request) -> dict[str, Any]:
        client_id, client_secret = self._oidc_client_credentials(request, call.params)
        if client_id != self.client_id:
            raise SlackApiFailure("invalid_client_id")
        if client_secret != self.client_secret:
            raise SlackApiFailure("bad_client_secret")
        grant = self._install_grants.get(str(call.params.get("code") or ""))
        if (
            grant is None
            or grant.used
            or time.monotonic() - grant.issued_at > self.install_code_ttl
        ):
            raise SlackApiFailure("invalid_code")
        if str(call.params.get("redirect_uri") or "") != grant.redirect_uri:
            raise SlackApiFailure("bad_redirect_uri")
        grant.used = True
        where = grant.team.enterprise_id if grant.org_wide else grant.team.team_id
        token = f"xoxb-{where}-{secrets.randbelow(10**12)}-{secrets.token_hex(12)}"
        self.installations[token] = Installation(
            token, grant.team, grant.org_wide, grant.user_id, grant.scopes
        )
        team = grant.team
        enterprise = (
            {"id": team.enterprise_id, "name": team.enterprise_name} if team.enterprise_id else None
        )
        return {
            "ok": True,
            "app_id": APP_ID,
            "authed_user": {"id": grant.user_id},
            "scope": grant.scopes,
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": self.bot_user_id,
            "team": None if grant.org_wide else {"id": team.team_id, "name": team.name},
            "enterprise": enterprise,
            "is_enterprise_install": grant.org_wide,
        }

    @slack_method("auth.test", with_request=True)
    async def _auth_test_by_token(self, call: RecordedCall, request: web.Request) -> dict[str, Any]:
        installation = self.installations.get(call.token or "")
        if installation is None:
            return await self._auth_test(call.params)  # the stand-in's own bot token
        team = installation.team
        return {
            "ok": True,
            "url": WORKSPACE_URL,
            "team": team.enterprise_name if installation.org_wide else team.name,
            "user": "vigil",
            "team_id": team.enterprise_id if installation.org_wide else team.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "enterprise_id": team.enterprise_id,
            "is_enterprise_install": installation.org_wide,
        }

    @slack_method("team.info", with_request=True)
    async def _team_info(self, call: RecordedCall, request: web.Request) -> dict[str, Any]:
        installation = self.installations.get(call.token or "")
        asked = str(call.params.get("team") or "")
        if installation is None:
            team = self.teams[self.team_id]
        else:
            team = self.teams.get(asked or installation.team.team_id)  # type: ignore[assignment]
            mine = team is not None and (
                team.team_id == installation.team.team_id
                or (installation.org_wide and team.enterprise_id == installation.team.enterprise_id)
            )
            if not mine:
                raise SlackApiFailure("team_not_found")
        if asked and asked != team.team_id:
            raise SlackApiFailure("team_not_found")
        body: dict[str, Any] = {
            "id": team.team_id,
            "name": team.name,
            "domain": team.team_id.lower(),
        }
        if team.enterprise_id:
            body.update(enterprise_id=team.enterprise_id, enterprise_name=team.enterprise_name)
        return {"ok": True, "team": body}
