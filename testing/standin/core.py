"""The stand-in's core: who the app is, the aiohttp server, and the Web API request path.

:class:`StandInCore` reads a Web API call (form or JSON, token from the form or a Bearer
header), records it, applies any queued fault, checks the token and hands the arguments
to the method handler of the API family that serves it. Each family (``users``,
``views``, ``chat``, ``oidc``, ``socket_mode``) is a subclass that marks its handlers with
:func:`slack_method`, keeps its own state, and adds routes and forgets state through two
hooks: :meth:`StandInCore._routes` and :meth:`StandInCore._forget_state`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from testing.standin.calls import RecordedCall, SlackApiFailure
from testing.standin.faults import FaultInjector

logger = logging.getLogger(__name__)

APP_ID = "A0VIGIL"
BOT_ID = "B0VIGIL"
WORKSPACE_URL = "https://vigil-demo.slack.com/"

#: Body fields that Slack accepts as JSON-encoded strings in form posts.
JSON_FIELDS = ("blocks", "view", "metadata", "attachments")

#: Methods that only accept the app-level token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

#: A method handler: the call's arguments in, the JSON body out.
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
#: A method handler that also needs the request (its headers) and the recorded call.
RequestHandler = Callable[[RecordedCall, web.Request], Awaitable[dict[str, Any]]]
_F = TypeVar("_F", bound=Callable[..., Any])


def slack_method(name: str, *, with_request: bool = False) -> Callable[[_F], _F]:
    """Make the decorated stand-in method the handler of Web API method ``name``.

    It is called with the call's arguments (a :data:`Handler`) or, ``with_request``, with
    the recorded call and the request (a :data:`RequestHandler`).
    """

    def mark(handler: _F) -> _F:
        handler.slack_method = (name, with_request)  # type: ignore[attr-defined]
        return handler

    return mark


class StandInCore(FaultInjector):
    """The app's identity in the workspace, the server's lifecycle and the API plumbing."""

    def __init__(
        self,
        *,
        team_id: str,
        team_name: str,
        bot_token: str,
        app_token: str,
        bot_user_id: str,
        trigger_ttl: float | None,
        client_id: str,
        client_secret: str,
    ) -> None:
        super().__init__()
        self.team_id = team_id
        self.team_name = team_name
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.trigger_ttl = trigger_ttl
        self.app_id = APP_ID
        self.bot_id = BOT_ID
        self.client_id = client_id
        self.client_secret = client_secret
        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0
        self._handlers: dict[str, Handler] = {}
        self._request_handlers: dict[str, RequestHandler] = {}
        for cls in reversed(type(self).__mro__):
            for attribute, value in vars(cls).items():
                if marked := getattr(value, "slack_method", None):
                    name, with_request = marked
                    table = self._request_handlers if with_request else self._handlers
                    table[name] = getattr(self, attribute)

    # -- what the API families add -------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        """Every route the server serves."""
        return [web.route("*", "/api/{method}", self._handle_api)]

    def _forget_state(self) -> None:
        """Forget what :meth:`reset_state` forgets (each family adds its own state)."""

    def reset_state(self) -> None:
        """Forget calls, views, messages, faults and Sign in with Slack codes,
        access tokens and tampering (users, tokens, keys and who the browser is
        signed in as are kept)."""
        self.calls.clear()
        self._forget_state()
        self.clear_faults()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and start serving. ``port=0`` picks a free port."""
        if self._runner is not None:
            raise RuntimeError("SlackStandIn is already running")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        app = web.Application()
        app.add_routes(self._routes())
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host, self._port = host, int(runner.addresses[0][1])
        logger.debug("Slack stand-in listening on %s", self.base_url)

    async def stop(self) -> None:
        """Release hanging requests, close sockets and stop serving."""
        if self._runner is None:
            return
        self._stopping.set()
        await self._close_connections()
        await self._runner.cleanup()
        self._runner = None
        logger.debug("Slack stand-in stopped")

    async def _close_connections(self) -> None:
        """Close long-lived connections before the server stops (Socket Mode's)."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if not self._port:
            raise RuntimeError("SlackStandIn is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """The ``base_url`` to give ``AsyncWebClient`` (ends with ``/api/``)."""
        return f"{self.base_url}/api/"

    # -- the Web API request path ------------------------------------------------------------

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise SlackApiFailure("invalid_json") from None
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    params[key] = value if isinstance(value, str) else "(file)"
        for name in JSON_FIELDS:
            value = params.get(name)
            if isinstance(value, str) and value:
                try:
                    params[name] = json.loads(value)
                except ValueError:
                    pass
        return params

    @staticmethod
    def _take_token(request: web.Request, params: dict[str, Any]) -> str | None:
        token = params.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        return token or None

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if method.startswith("openid."):
            return None
        if not token:
            return "not_authed"
        wanted = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
        if token == wanted:
            return None
        if token in (self.app_token, self.bot_token):
            return "not_allowed_token_type"
        return "invalid_auth"

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        logger.debug("stand-in received %s", method)
        call = self._record(method, {})
        try:
            call.params = await self._read_params(request)
        except SlackApiFailure as failure:
            return await self._finish(call, 200, failure.body())
        call.token = self._take_token(request, call.params)
        await self._notify()

        if (faulted := await self._apply_fault(request, call)) is not None:
            return faulted

        handler = self._handlers.get(method)
        request_handler = self._request_handlers.get(method)
        if handler is None and request_handler is None:
            return await self._finish(call, 200, {"ok": False, "error": "unknown_method"})
        if error := self._auth_error(method, call.token):
            return await self._finish(call, 200, {"ok": False, "error": error})
        try:
            if request_handler is not None:
                body = await request_handler(call, request)
            else:
                assert handler is not None
                body = await handler(call.params)
        except SlackApiFailure as failure:
            body = failure.body()
        return await self._finish(call, 200, body)
