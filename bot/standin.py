"""A local stand-in for the Slack Web API and Socket Mode.

Vigil never talks to the real Slack in tests, demos or benchmarks. Instead a
:class:`SlackStandIn` runs an aiohttp server on 127.0.0.1 and the app points
``AsyncWebClient(token=..., base_url=standin.api_url)`` at it. The stand-in:

* answers the Web API methods Vigil uses with Slack-shaped JSON and Slack's
  documented error codes (``invalid_auth``, ``channel_not_found``,
  ``exchanged_trigger_id``, ``hash_conflict``, ``invalid_arguments`` ...);
* keeps the state a test wants to assert on (:attr:`SlackStandIn.views`,
  :attr:`SlackStandIn.messages`, :attr:`SlackStandIn.home_views` ...);
* records every call (:attr:`SlackStandIn.calls`), including failed ones;
* injects faults on request: HTTP statuses with ``Retry-After``, hangs,
  connection resets, ``ok: false`` errors and Slack-style rate limits;
* serves a Socket Mode websocket that slack_sdk's ``SocketModeClient`` (and so
  Bolt's ``AsyncSocketModeHandler``) connects to, and can push envelopes to it;
* serves ``response_url`` endpoints handed out by :mod:`bot.simulator`;
* plays Slack's side of "Sign in with Slack" (OpenID Connect): the browser's
  ``/openid/connect/authorize`` redirect, ``openid.connect.token``,
  ``openid.connect.userInfo`` and the JWKS at ``/openid/connect/keys``, with
  RS256 id_tokens and hooks to issue tampered ones (:meth:`SlackStandIn.oidc_tamper`).

Request bodies can contain children's names, so nothing here logs them: only
method names and statuses are logged, at DEBUG level.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import functools
import hashlib
import html
import json
import logging
import re
import secrets
import string
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

try:  # PyJWT signs the id_tokens when installed; a small RS256 signer stands in otherwise.
    import jwt as _pyjwt
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _pyjwt = None

logger = logging.getLogger(__name__)

APP_ID = "A0VIGIL"
BOT_ID = "B0VIGIL"
WORKSPACE_URL = "https://vigil-demo.slack.com/"

#: Body fields that Slack accepts as JSON-encoded strings in form posts.
JSON_FIELDS = ("blocks", "view", "metadata", "attachments")

#: Methods that only accept the app-level token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

#: ``iss`` of Slack's id_tokens. The stand-in keeps it: only its endpoints are local.
OIDC_ISSUER = "https://slack.com"
#: Slack's claim names for its own ids (in id_tokens and openid.connect.userInfo).
USER_ID_CLAIM = "https://slack.com/user_id"
TEAM_ID_CLAIM = "https://slack.com/team_id"
#: Scopes Sign in with Slack accepts at /openid/connect/authorize.
OIDC_SCOPES = frozenset({"openid", "email", "profile"})
#: What :meth:`SlackStandIn.oidc_tamper` can do to the next id_token.
OIDC_TAMPER_KINDS = frozenset(
    {"wrong_audience", "wrong_issuer", "bad_signature", "wrong_nonce", "expired", "wrong_team"}
)
#: The workspace a "wrong_team" sign-in comes from, and the audience of "wrong_audience".
OTHER_TEAM_ID = "T0ELSEWHERE"
OTHER_TEAM_NAME = "Elsewhere Academy"
OTHER_CLIENT_ID = "9999.0000"
#: The ``iss`` of a "wrong_issuer" id_token.
OTHER_ISSUER = "https://slack.example.net"
#: id_tokens expire this many seconds after they are issued.
ID_TOKEN_TTL = 300

_ALNUM_UPPER = string.ascii_uppercase + string.digits
_TRIGGER_RE = re.compile(r"^\d+\.\d+\.\w+$")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
#: A method handler that also needs the request (its headers) and the recorded call.
RequestHandler = Callable[["RecordedCall", web.Request], Awaitable[dict[str, Any]]]


@dataclass
class RecordedCall:
    """One request the stand-in received, and what it answered.

    ``status`` is 0 and ``response`` is None while the call is still being
    answered, and stay so for a call whose connection was reset. For the
    browser-facing Sign in with Slack endpoints (``openid.connect.authorize``,
    ``openid.connect.keys``, ``openid.configuration``) ``response`` is a
    Slack-style summary of the answer (``ok``, ``error``, ``code``, ``location``
    ...) rather than a JSON body, and the authorize redirect counts as ok (302).
    """

    method: str
    params: dict[str, Any]
    token: str | None
    status: int = 0
    response: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    fault: str | None = None  # "status", "hang", "reset", "error", "rate_limit" or None

    @property
    def ok(self) -> bool:
        """True when the call was answered with HTTP 200 (or the authorize
        redirect's 302) and ``"ok": true``."""
        return self.status in (200, 302) and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack ``error`` code of the answer, if any."""
        return None if self.response is None else self.response.get("error")

    def describe(self) -> str:
        """A short, body-free description: safe for logs and assertion messages."""
        if self.answered_at is None:
            outcome = "unanswered"
        elif self.status == 0:
            outcome = "reset"
        else:
            outcome = f"{self.status} {'ok' if self.ok else self.error}"
        return f"{self.method} ({outcome})"


@dataclass
class _Fault:
    kind: str  # "status" | "hang" | "reset" | "error"
    status: int = 200
    retry_after: int | None = None
    body: dict[str, Any] | None = None
    seconds: float = 0.0
    error: str = ""


@dataclass
class _Bucket:
    """A token bucket: ``per_second`` refill, capacity ``max(1, per_second)``."""

    per_second: float
    retry_after: int
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        capacity = max(1.0, self.per_second)
        self.tokens = min(capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Trigger:
    user_id: str
    view_id: str | None
    issued_at: float


@dataclass
class _ResponseUrl:
    channel_id: str
    user_id: str
    message_ts: str | None
    uses: int = 0


@dataclass
class _OidcGrant:
    """An authorization code handed to the browser by /openid/connect/authorize."""

    user_id: str
    client_id: str
    redirect_uri: str
    nonce: str
    scopes: frozenset[str]
    issued_at: float  # time.monotonic(), for the code's expiry
    auth_time: int  # wall clock, for the ``auth_time`` claim
    used: bool = False
    access_token: str | None = None


@dataclass
class _OidcSession:
    """What an access token from openid.connect.token may read with userInfo."""

    user_id: str
    team_id: str
    scopes: frozenset[str]


class SlackApiFailure(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The Slack-shaped JSON body for this failure."""
        body: dict[str, Any] = {"ok": False, "error": self.error, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(length))


def _stable_id(prefix: str, key: str) -> str:
    return prefix + hashlib.sha1(key.encode()).hexdigest()[:10].upper()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    """One RSA key per process: generating one costs ~60 ms, and every stand-in needs one."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The RFC 7517 members of ``key``'s public half (``e``, ``kty``, ``n``)."""
    numbers = key.public_key().public_numbers()
    return {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}


def _jwk_thumbprint(key: rsa.RSAPrivateKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``key``'s public JWK (used as its ``kid``)."""
    canonical = json.dumps(_public_jwk(key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _sign_rs256(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    """A compact RS256 JWS of ``claims`` with ``kid`` in its header."""
    if _pyjwt is not None:
        return str(_pyjwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}))
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _at_hash(access_token: str) -> str:
    """OpenID Connect's ``at_hash`` for an RS256 id_token: left half of SHA-256."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])


def _with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string (existing ones kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int((fraction or "0").ljust(6, "0")[:6])


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


def _fill_ids(blocks: Any) -> Any:
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


class SlackStandIn:
    """A Slack Web API and Socket Mode stand-in served on 127.0.0.1.

    Use as an async context manager, or call :meth:`start` / :meth:`stop`::

        async with SlackStandIn() as slack:
            slack.add_user("U01", email="teacher@school.example", name="Ms Teacher")
            client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
            await client.chat_postMessage(channel="U01", text="hello")
            assert slack.messages_for_user("U01")[0]["text"] == "hello"

    For Sign in with Slack, point the app's authorize URL at :attr:`authorize_url`,
    its JWKS at :attr:`jwks_url` and its Web API client at :attr:`api_url`, then
    choose who "the browser" is signed in to Slack as with :meth:`oidc_sign_in_as`.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0VIGIL",
        team_name: str = "Vigil Demo School",
        bot_token: str = "xoxb-standin",
        app_token: str = "xapp-standin",
        bot_user_id: str = "U0VIGILBOT",
        trigger_ttl: float | None = None,
        client_id: str = "1234.5678",
        client_secret: str = "standin-client-secret",
    ) -> None:
        """Create a stopped stand-in.

        ``trigger_ttl`` (seconds) makes trigger ids from :meth:`register_trigger`
        expire like Slack's (3 s in production); None means they never expire.
        ``client_id`` / ``client_secret`` are the app's OAuth credentials for
        Sign in with Slack. A fresh 2048-bit RSA key signs the id_tokens; its
        key id is :attr:`kid` (the RFC 7638 thumbprint, as Slack's kids are).
        """
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
        #: How long (seconds) an authorization code can be exchanged; Slack's is 5 minutes.
        self.oidc_code_ttl = 300.0
        self._oidc_key = _signing_key()
        self._oidc_other_key: rsa.RSAPrivateKey | None = None
        self.kid = _jwk_thumbprint(self._oidc_key)

        self.calls: list[RecordedCall] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.view_users: dict[str, str] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}

        self._dm_users: dict[str, str] = {}
        self._opened_dms: set[str] = set()
        self._triggers: dict[str, _Trigger] = {}
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._last_ts_us = 0

        self._oidc_user: str | None = None
        self._oidc_grants: dict[str, _OidcGrant] = {}
        self._oidc_sessions: dict[str, _OidcSession] = {}
        self._oidc_tamper: str | None = None

        self._sockets: list[web.WebSocketResponse] = []
        self._socket_tickets: set[str] = set()
        self._pending_acks: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0

        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.info": self._users_info,
            "apps.connections.open": self._apps_connections_open,
        }
        self._request_handlers: dict[str, RequestHandler] = {
            "openid.connect.token": self._openid_connect_token,
            "openid.connect.userInfo": self._openid_connect_user_info,
        }
        self.users[bot_user_id] = self._user_object(
            bot_user_id, email=None, name="vigil", team_id=team_id, deleted=False, is_bot=True
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and start serving. ``port=0`` picks a free port."""
        if self._runner is not None:
            raise RuntimeError("SlackStandIn is already running")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket-mode", self._handle_socket)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/openid/connect/authorize", self._handle_oidc_authorize)
        app.router.add_get("/openid/connect/keys", self._handle_oidc_keys)
        app.router.add_get("/.well-known/openid-configuration", self._handle_oidc_configuration)
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
        for ws in list(self._sockets):
            await ws.close()
        for future in self._pending_acks.values():
            if not future.done():
                future.cancel()
        await self._runner.cleanup()
        self._runner = None
        logger.debug("Slack stand-in stopped")

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

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

    @property
    def authorize_url(self) -> str:
        """Where Sign in with Slack sends the browser (Slack's
        ``https://slack.com/openid/connect/authorize``)."""
        return f"{self.base_url}/openid/connect/authorize"

    @property
    def jwks_url(self) -> str:
        """The JWKS with the id_token signing key (``https://slack.com/openid/connect/keys``)."""
        return f"{self.base_url}/openid/connect/keys"

    @property
    def openid_configuration_url(self) -> str:
        """OpenID Connect discovery (``https://slack.com/.well-known/openid-configuration``),
        pointing at this stand-in's endpoints."""
        return f"{self.base_url}/.well-known/openid-configuration"

    # ------------------------------------------------------------------ directory

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
        self.users[user_id] = self._user_object(
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
        return _stable_id("D", f"{self.team_id}:{user_id}")

    def messages_for_user(self, user_id: str) -> list[dict[str, Any]]:
        """Messages in the app's DM with ``user_id``, oldest first."""
        return self.messages_in(self.dm_channel_for(user_id))

    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        """Messages (including thread replies) in ``channel_id``, oldest first."""
        found = [m for (channel, _), m in self.messages.items() if channel == channel_id]
        return sorted(found, key=lambda m: _ts_key(m["ts"]))

    def add_user_message(
        self, channel: str, user_id: str, text: str, *, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Seed a message written by a person (not the bot); returns the stored message."""
        channel_id = self._resolve_channel(channel)
        message = {
            "type": "message",
            "channel": channel_id,
            "ts": self._next_ts(),
            "user": user_id,
            "team": self.team_id,
            "text": text,
        }
        if blocks is not None:
            message["blocks"] = copy.deepcopy(blocks)
        self.messages[(channel_id, message["ts"])] = message
        return message

    def register_trigger(self, user_id: str, *, view_id: str | None = None) -> str:
        """Issue a fresh trigger id for ``user_id`` (optionally from inside ``view_id``)."""
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(user_id, view_id, time.monotonic())
        return trigger_id

    def register_response_url(
        self, *, channel_id: str, user_id: str, message_ts: str | None = None
    ) -> str:
        """Issue a ``response_url`` on this stand-in, as Slack includes in payloads."""
        key = secrets.token_urlsafe(16)
        self._response_urls[key] = _ResponseUrl(channel_id, user_id, message_ts)
        return f"{self.base_url}/response/{key}"

    # ------------------------------------------------------------------ call log

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[RecordedCall]:
        """Recorded calls to ``method`` in arrival order (only ``ok`` ones if asked)."""
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    def clear_calls(self) -> None:
        """Forget recorded calls (state such as messages and views is kept)."""
        self.calls.clear()

    async def wait_for_calls(
        self,
        method: str,
        count: int,
        *,
        timeout: float = 5.0,
        ok_only: bool = True,
    ) -> list[RecordedCall]:
        """Wait until at least ``count`` calls to ``method`` arrived (and, with
        ``ok_only``, were answered ok); return them.

        Raises TimeoutError listing the calls that did arrive.
        """

        def enough() -> bool:
            return len(self.calls_to(method, ok_only=ok_only)) >= count

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(enough)
        except TimeoutError:
            got = len(self.calls_to(method, ok_only=ok_only))
            seen = ", ".join(c.describe() for c in self.calls) or "none"
            kind = "ok " if ok_only else ""
            raise TimeoutError(
                f"Timed out after {timeout}s waiting for {count} {kind}call(s) to {method}; "
                f"got {got}. Calls received: {seen}"
            ) from None
        return self.calls_to(method, ok_only=ok_only)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ faults

    def _queue(self, method: str, fault: _Fault, count: int) -> None:
        self._faults.setdefault(method, deque()).extend(copy.copy(fault) for _ in range(count))

    def inject_status(
        self,
        method: str,
        status: int,
        *,
        count: int = 1,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``count`` calls to ``method`` with HTTP ``status``.

        A 429 always carries ``Retry-After`` (``retry_after`` or 1) and the body
        ``{"ok": false, "error": "ratelimited"}`` like Slack. ``method="*"``
        matches any method.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._queue(
            method, _Fault("status", status=status, retry_after=retry_after, body=body), count
        )

    def inject_hang(self, method: str, *, seconds: float = 60.0, count: int = 1) -> None:
        """Hold the next ``count`` calls unanswered for ``seconds``, then answer
        them normally (like a slow Slack that did the work late). Stopping the
        stand-in drops held connections instead."""
        self._queue(method, _Fault("hang", seconds=seconds), count)

    def inject_reset(self, method: str, *, count: int = 1) -> None:
        """Close the connection of the next ``count`` calls without answering.

        Note: AsyncWebClient's default retry handlers retry a dropped
        connection once, so use ``count=2`` or ``retry_handlers=[]`` to make a
        client call fail.
        """
        self._queue(method, _Fault("reset"), count)

    def inject_error(self, method: str, error: str, *, count: int = 1) -> None:
        """Answer the next ``count`` calls with HTTP 200 ``{"ok": false, "error": error}``."""
        self._queue(method, _Fault("error", error=error), count)

    def rate_limit(self, method: str, *, per_second: float, retry_after: int = 1) -> None:
        """Rate-limit ``method`` like Slack: beyond ``per_second`` (token bucket,
        burst ``max(1, per_second)``) answer 429 with ``Retry-After``."""
        capacity = max(1.0, per_second)
        self._buckets[method] = _Bucket(per_second, retry_after, capacity, time.monotonic())

    def clear_faults(self) -> None:
        """Drop queued faults and rate limits."""
        self._faults.clear()
        self._buckets.clear()

    def _take_fault(self, method: str, *, wildcard: bool = True) -> _Fault | None:
        for key in (method, "*") if wildcard else (method,):
            queue = self._faults.get(key)
            if queue:
                return queue.popleft()
        return None

    # ------------------------------------------------------------------ HTTP plumbing

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

    async def _finish(
        self,
        call: RecordedCall,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        call.status, call.response, call.answered_at = status, body, time.monotonic()
        await self._notify()
        logger.debug("stand-in answered %s: %s", call.method, status)
        return web.json_response(body, status=status, headers=headers)

    async def _drop(self, request: web.Request, call: RecordedCall) -> web.StreamResponse:
        call.answered_at = time.monotonic()
        await self._notify()
        if request.transport is not None:
            request.transport.abort()
        # Nothing can be written any more; aiohttp discards this response.
        return web.Response(status=499)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        logger.debug("stand-in received %s", method)
        call = RecordedCall(method=method, params={}, token=None)
        self.calls.append(call)
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

    async def _apply_fault(
        self, request: web.Request, call: RecordedCall, *, wildcard: bool = True
    ) -> web.StreamResponse | None:
        """Answer ``call`` as a queued fault or rate limit says; None to answer normally.

        ``wildcard=False`` ignores faults queued for ``"*"`` (the browser-facing
        Sign in with Slack endpoints only take faults queued by name).
        """
        fault = self._take_fault(call.method, wildcard=wildcard)
        if fault is not None:
            call.fault = fault.kind
            if fault.kind == "reset":
                return await self._drop(request, call)
            if fault.kind == "status":
                return await self._finish(
                    call,
                    fault.status,
                    fault.body or self._status_body(fault.status),
                    {"Retry-After": str(fault.retry_after)}
                    if fault.retry_after is not None
                    else None,
                )
            if fault.kind == "error":
                return await self._finish(call, 200, {"ok": False, "error": fault.error})
            if fault.kind == "hang":
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=fault.seconds)
                    return await self._drop(request, call)
                except TimeoutError:
                    pass

        bucket = self._buckets.get(call.method)
        if bucket is not None and not bucket.take(time.monotonic()):
            call.fault = "rate_limit"
            return await self._finish(
                call,
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(bucket.retry_after)},
            )
        return None

    @staticmethod
    def _status_body(status: int) -> dict[str, Any]:
        error = {429: "ratelimited", 500: "fatal_error", 503: "service_unavailable"}.get(
            status, "internal_error" if status >= 500 else "request_failed"
        )
        return {"ok": False, "error": error}

    # ------------------------------------------------------------------ helpers

    def _user_object(
        self,
        user_id: str,
        *,
        email: str | None,
        name: str,
        team_id: str,
        deleted: bool,
        is_bot: bool,
    ) -> dict[str, Any]:
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

    def _next_ts(self) -> str:
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _resolve_channel(self, channel: Any) -> str:
        """Map a channel argument to a conversation id; users map to their DM."""
        if not isinstance(channel, str) or not channel:
            raise SlackApiFailure("channel_not_found")
        if channel[0] in "UW":
            if channel not in self.users or self.users[channel].get("is_bot"):
                raise SlackApiFailure("channel_not_found")
            return self.dm_channel_for(channel)
        if channel[0] == "D":
            if channel not in self._dm_users:
                raise SlackApiFailure("channel_not_found")
            return channel
        if channel[0] in "CG":
            return channel
        raise SlackApiFailure("channel_not_found")

    @staticmethod
    def _public_message(message: dict[str, Any], *, with_metadata: bool = True) -> dict[str, Any]:
        public = {k: copy.deepcopy(v) for k, v in message.items() if k != "channel"}
        if not with_metadata:
            public.pop("metadata", None)
        return public

    @staticmethod
    def _check_message_content(params: dict[str, Any]) -> None:
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        if isinstance(text, str) and len(text) > 40000:
            raise SlackApiFailure("msg_too_long")
        if errors := validate_blocks(blocks, "/blocks", max_blocks=50):
            raise SlackApiFailure("invalid_blocks", messages=errors)
        metadata = params.get("metadata")
        if metadata not in (None, "", {}) and (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackApiFailure("invalid_metadata_format")

    # ------------------------------------------------------------------ auth / users

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

    async def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").strip().lower()
        for user in self.users.values():
            if email and str(user["profile"].get("email", "")).lower() == email:
                return {"ok": True, "user": copy.deepcopy(user)}
        raise SlackApiFailure("users_not_found")

    async def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    # ------------------------------------------------------------------ views

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
    ) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "blocks": _fill_ids(view.get("blocks") or []),
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
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for name in ("title", "submit", "close"):
            if name in view:
                stored[name] = copy.deepcopy(view[name])
        return stored

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

    async def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._check_trigger(params)
        view = self._check_new_view(params, "modal")
        view_id = _random_id("V")
        stored = self._build_view(
            view, view_id=view_id, root_view_id=view_id, previous_view_id=None
        )
        self._used_triggers.add(params["trigger_id"])
        return self._store_view(stored, trigger.user_id if trigger else None)

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
                view, view_id=view_id, root_view_id=view_id, previous_view_id=None
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
            )
            if view_id in self.view_users:
                self.view_users[pushed_id] = self.view_users[view_id]

    # ------------------------------------------------------------------ chat

    def _bot_message(self, channel_id: str, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "channel": channel_id,
            "ts": self._next_ts(),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": params.get("text") or "",
        }
        if params.get("blocks"):
            message["blocks"] = _fill_ids(params["blocks"])
        if params.get("attachments"):
            message["attachments"] = copy.deepcopy(params["attachments"])
        if params.get("metadata"):
            message["metadata"] = copy.deepcopy(params["metadata"])
        thread_ts = params.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            parent = self.messages.get((channel_id, str(thread_ts)))
            if parent is not None:
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
        return message

    async def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(params.get("channel"))
        self._check_message_content(params)
        message = self._bot_message(channel_id, params)
        self.messages[(channel_id, message["ts"])] = message
        self._opened_dms.add(channel_id)
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "message": self._public_message(message),
        }

    async def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not isinstance(channel, str) or channel[:1] in ("U", "W"):
            raise SlackApiFailure("channel_not_found")
        channel_id = self._resolve_channel(channel)
        message = self.messages.get((channel_id, str(params.get("ts") or "")))
        if message is None:
            raise SlackApiFailure("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        self._check_message_content(params)
        if params.get("text") is not None:
            message["text"] = params["text"]
        for name in ("blocks", "attachments", "metadata"):
            if name in params:
                value = params[name]
                if value in ([], {}, "", None):
                    message.pop(name, None)
                else:
                    message[name] = _fill_ids(value) if name == "blocks" else copy.deepcopy(value)
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "text": message["text"],
            "message": self._public_message(message),
        }

    async def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(params.get("channel"))
        user_id = str(params.get("user") or "")
        if user_id not in self.users:
            raise SlackApiFailure("user_not_in_channel")
        self._check_message_content(params)
        ts = self._next_ts()
        ephemeral = {
            "channel": channel_id,
            "user": user_id,
            "ts": ts,
            "text": params.get("text") or "",
        }
        if params.get("blocks"):
            ephemeral["blocks"] = _fill_ids(params["blocks"])
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ts}

    # ------------------------------------------------------------------ conversations

    async def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = params.get("users")
        if isinstance(users, list):
            user_ids = [str(u) for u in users]
        else:
            user_ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
        if not user_ids:
            if params.get("channel"):
                return {"ok": True, "channel": {"id": self._resolve_channel(params["channel"])}}
            raise SlackApiFailure("users_list_not_supplied")
        for user_id in user_ids:
            if user_id not in self.users:
                raise SlackApiFailure("user_not_found")
        if len(user_ids) == 1:
            channel_id = self.dm_channel_for(user_ids[0])
        else:
            channel_id = _stable_id("G", ",".join(sorted(user_ids)))
        body: dict[str, Any] = {"ok": True, "channel": {"id": channel_id}}
        if channel_id in self._opened_dms:
            body.update(no_op=True, already_open=True)
        self._opened_dms.add(channel_id)
        return body

    async def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not isinstance(channel, str) or channel[:1] in ("U", "W"):
            raise SlackApiFailure("channel_not_found")
        channel_id = self._resolve_channel(channel)
        inclusive = _truthy(params.get("inclusive"))
        oldest = _ts_key(str(params.get("oldest") or "0"))
        latest = _ts_key(str(params.get("latest") or f"{time.time() + 1:.6f}"))
        limit = max(1, min(int(params.get("limit") or 100), 999))
        with_metadata = _truthy(params.get("include_all_metadata"))
        cursor = params.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor)).decode()
                latest, inclusive_latest = _ts_key(decoded.removeprefix("next_ts:")), False
            except (ValueError, UnicodeDecodeError):
                raise SlackApiFailure("invalid_cursor") from None
        else:
            inclusive_latest = inclusive

        def in_range(ts: str) -> bool:
            key = _ts_key(ts)
            low = key >= oldest if inclusive else key > oldest
            high = key <= latest if inclusive_latest else key < latest
            return low and high

        top_level = [
            m
            for m in reversed(self.messages_in(channel_id))
            if m.get("thread_ts") in (None, m["ts"]) and in_range(m["ts"])
        ]
        page, rest = top_level[:limit], top_level[limit:]
        next_cursor = ""
        if rest:
            next_cursor = base64.b64encode(f"next_ts:{page[-1]['ts']}".encode()).decode()
        return {
            "ok": True,
            "messages": [self._public_message(m, with_metadata=with_metadata) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    # ------------------------------------------------------------------ response_url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        call = RecordedCall(method="response_url", params={}, token=None)
        self.calls.append(call)
        try:
            call.params = await self._read_params(request)
        except SlackApiFailure as failure:
            return await self._finish(call, 400, failure.body())
        target = self._response_urls.get(request.match_info["key"])
        if target is None:
            return await self._finish(call, 404, {"ok": False, "error": "expired_url"})
        target.uses += 1
        if target.uses > 5:
            return await self._finish(call, 404, {"ok": False, "error": "used_url"})
        params = call.params
        key = (target.channel_id, target.message_ts or "")
        if _truthy(params.get("delete_original")) and key in self.messages:
            del self.messages[key]
        elif _truthy(params.get("replace_original")) and key in self.messages:
            message = self.messages[key]
            message["text"] = params.get("text") or ""
            if params.get("blocks"):
                message["blocks"] = _fill_ids(params["blocks"])
            else:
                message.pop("blocks", None)
        elif params.get("response_type") == "in_channel":
            message = self._bot_message(target.channel_id, params)
            self.messages[(target.channel_id, message["ts"])] = message
        else:
            ephemeral = {
                "channel": target.channel_id,
                "user": target.user_id,
                "ts": self._next_ts(),
                "text": params.get("text") or "",
            }
            if params.get("blocks"):
                ephemeral["blocks"] = _fill_ids(params["blocks"])
            self.ephemerals.append(ephemeral)
        return await self._finish(call, 200, {"ok": True})

    # ------------------------------------------------------------------ Sign in with Slack

    def oidc_sign_in_as(self, user_id: str | None) -> None:
        """Make ``user_id`` the person "the browser" is signed in to Slack as.

        /openid/connect/authorize consents for them at once. ``user_id`` must be
        a person added with :meth:`add_user`; None signs the browser out, after
        which authorize answers 400.
        """
        if user_id is not None:
            user = self.users.get(user_id)
            if user is None:
                raise KeyError(f"{user_id} is not a stand-in user: add it with add_user() first")
            if user.get("is_bot"):
                raise ValueError(f"{user_id} is a bot user and cannot sign in")
        self._oidc_user = user_id

    def oidc_tamper(self, kind: str | None) -> None:
        """Spoil the next id_token openid.connect.token issues, for negative tests.

        ``kind`` is one of :data:`OIDC_TAMPER_KINDS`:

        * ``"wrong_audience"``: ``aud`` is another app's client id;
        * ``"wrong_issuer"``: ``iss`` is not ``https://slack.com``;
        * ``"bad_signature"``: signed by a key that is not in the JWKS (same ``kid``);
        * ``"wrong_nonce"``: ``nonce`` is not the one sent to authorize;
        * ``"expired"``: issued 10 minutes ago, expired 5 minutes ago;
        * ``"wrong_team"``: the person signed in to another workspace
          (:data:`OTHER_TEAM_ID`); openid.connect.userInfo says so too.

        None cancels a pending tamper. It applies once, then tokens are good again.
        """
        if kind is not None and kind not in OIDC_TAMPER_KINDS:
            kinds = ", ".join(sorted(OIDC_TAMPER_KINDS))
            raise ValueError(f"unknown tamper kind {kind!r}; use one of: {kinds}")
        self._oidc_tamper = kind

    @property
    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set served at :attr:`jwks_url`."""
        key = {**_public_jwk(self._oidc_key), "kid": self.kid, "use": "sig", "alg": "RS256"}
        return {"keys": [key]}

    def _team_domain(self, team_id: str) -> str:
        if team_id != self.team_id:
            return "elsewhere-academy"
        return (urlsplit(WORKSPACE_URL).hostname or "vigil-demo").split(".", 1)[0]

    async def _finish_browser(
        self,
        call: RecordedCall,
        status: int,
        summary: dict[str, Any],
        response: web.Response,
    ) -> web.Response:
        """Record ``summary`` for a browser-facing answer and send ``response``."""
        call.status, call.response, call.answered_at = status, summary, time.monotonic()
        await self._notify()
        logger.debug("stand-in answered %s: %s", call.method, status)
        return response

    async def _oidc_error_page(self, call: RecordedCall, error: str, message: str) -> web.Response:
        """A 400 error page, as Slack shows the browser for a bad authorize request."""
        page = (
            "<!doctype html>\n<html><head><title>Sign in with Slack: error</title></head>"
            f"<body><h1>Something went wrong</h1><p>{html.escape(message)}</p>"
            f"<p><code>{html.escape(error)}</code></p></body></html>\n"
        )
        response = web.Response(status=400, text=page, content_type="text/html")
        summary = {"ok": False, "error": error, "message": message}
        return await self._finish_browser(call, 400, summary, response)

    def _check_authorize(self, query: dict[str, str]) -> tuple[str, str] | None:
        """The (error, message) a bad authorize request gets, or None."""
        if query.get("response_type") != "code":
            return "invalid_response_type", "response_type must be code"
        if not query.get("client_id"):
            return "invalid_client_id", "client_id is missing"
        if query["client_id"] != self.client_id:
            return "invalid_client_id", "client_id is not a known app"
        scopes = set(re.split(r"[\s,]+", query.get("scope", "").strip())) - {""}
        if "openid" not in scopes:
            return "invalid_scope", "scope must include openid"
        if unknown := scopes - OIDC_SCOPES:
            return "invalid_scope", f"unsupported scope: {', '.join(sorted(unknown))}"
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri:
            return "bad_redirect_uri", "redirect_uri is missing"
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return "bad_redirect_uri", "redirect_uri must be an absolute http(s) URL"
        if not query.get("state"):
            return "missing_state", "state is missing"
        if not query.get("nonce"):
            return "missing_nonce", "nonce is missing"
        if self._oidc_user is None:
            return "not_signed_in", "no user signed in to the stand-in"
        user = self.users.get(self._oidc_user)
        if user is None or user.get("deleted"):
            return "account_inactive", "the signed-in user's account is deactivated"
        team = query.get("team")
        if team and team != user["team_id"]:
            return "team_mismatch", f"the signed-in user is not a member of {team}"
        return None

    async def _handle_oidc_authorize(self, request: web.Request) -> web.StreamResponse:
        """``GET /openid/connect/authorize``: consent as the signed-in user and
        redirect to ``redirect_uri`` with a single-use code and the state."""
        query = dict(request.query)
        call = RecordedCall(method="openid.connect.authorize", params=query, token=None)
        self.calls.append(call)
        logger.debug("stand-in received %s", call.method)
        await self._notify()
        if (faulted := await self._apply_fault(request, call, wildcard=False)) is not None:
            return faulted
        if problem := self._check_authorize(query):
            return await self._oidc_error_page(call, *problem)
        assert self._oidc_user is not None
        code = f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**13)}.{secrets.token_hex(32)}"
        self._oidc_grants[code] = _OidcGrant(
            user_id=self._oidc_user,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            nonce=query["nonce"],
            scopes=frozenset(re.split(r"[\s,]+", query["scope"].strip())),
            issued_at=time.monotonic(),
            auth_time=int(time.time()),
        )
        location = _with_query(query["redirect_uri"], code=code, state=query["state"])
        response = web.Response(status=302, headers={"Location": location})
        summary = {"ok": True, "code": code, "state": query["state"], "location": location}
        return await self._finish_browser(call, 302, summary, response)

    async def _handle_oidc_keys(self, request: web.Request) -> web.StreamResponse:
        """``GET /openid/connect/keys``: the JWKS (recorded as ``openid.connect.keys``)."""
        call = RecordedCall(method="openid.connect.keys", params=dict(request.query), token=None)
        self.calls.append(call)
        await self._notify()
        if (faulted := await self._apply_fault(request, call, wildcard=False)) is not None:
            return faulted
        jwks = self.jwks
        return await self._finish_browser(call, 200, {"ok": True, **jwks}, web.json_response(jwks))

    async def _handle_oidc_configuration(self, request: web.Request) -> web.StreamResponse:
        """``GET /.well-known/openid-configuration``: Slack's discovery document,
        with this stand-in's endpoints (recorded as ``openid.configuration``)."""
        call = RecordedCall(method="openid.configuration", params=dict(request.query), token=None)
        self.calls.append(call)
        await self._notify()
        if (faulted := await self._apply_fault(request, call, wildcard=False)) is not None:
            return faulted
        document = {
            "issuer": OIDC_ISSUER,
            "authorization_endpoint": self.authorize_url,
            "token_endpoint": f"{self.api_url}openid.connect.token",
            "userinfo_endpoint": f"{self.api_url}openid.connect.userInfo",
            "jwks_uri": self.jwks_url,
            "scopes_supported": sorted(OIDC_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "auth_time", "iss"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": True,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }
        return await self._finish_browser(
            call, 200, {"ok": True, **document}, web.json_response(document)
        )

    def _oidc_client_credentials(
        self, request: web.Request, params: dict[str, Any]
    ) -> tuple[str, str]:
        """(client_id, client_secret) from HTTP Basic (preferred, as slack_sdk
        sends them) or else the form."""
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise SlackApiFailure("invalid_client_id") from None
            client_id, _, client_secret = decoded.partition(":")
            return client_id, client_secret
        return str(params.get("client_id") or ""), str(params.get("client_secret") or "")

    def _oidc_claims(self, user_id: str, team_id: str, scopes: frozenset[str]) -> dict[str, Any]:
        """The identity claims Slack gives for ``user_id`` under ``scopes``."""
        user = self.users[user_id]
        claims: dict[str, Any] = {"sub": user_id, USER_ID_CLAIM: user_id, TEAM_ID_CLAIM: team_id}
        profile = user.get("profile", {})
        if "email" in scopes and profile.get("email"):
            claims.update(
                email=profile["email"],
                email_verified=True,
                date_email_verified=int(user.get("updated") or time.time()),
            )
        if "profile" in scopes:
            name = str(user.get("real_name") or "")
            given, _, family = name.partition(" ")
            avatar = f"https://avatars.slack-edge.example/{user_id}"
            claims.update(
                {
                    "name": name,
                    "picture": f"{avatar}_512.png",
                    "given_name": given,
                    "family_name": family,
                    "locale": "en-GB",
                    "https://slack.com/team_name": (
                        self.team_name if team_id == self.team_id else OTHER_TEAM_NAME
                    ),
                    "https://slack.com/team_domain": self._team_domain(team_id),
                    **{
                        f"https://slack.com/user_image_{size}": f"{avatar}_{size}.png"
                        for size in (24, 32, 48, 72, 192, 512)
                    },
                    "https://slack.com/team_image_default": True,
                }
            )
        return claims

    async def _openid_connect_token(
        self, call: RecordedCall, request: web.Request
    ) -> dict[str, Any]:
        """Exchange an authorize code for an access token and an RS256 id_token.

        Authenticates the app by HTTP Basic or form credentials; the code must be
        known, unused, younger than :attr:`oidc_code_ttl` and come with the
        authorize request's ``redirect_uri``. Only a success uses the code up.
        """
        params = call.params
        grant_type = params.get("grant_type")
        if grant_type == "refresh_token":
            raise SlackApiFailure("invalid_refresh_token")  # the stand-in issues none
        if grant_type not in (None, "", "authorization_code"):
            raise SlackApiFailure("invalid_grant_type")
        client_id, client_secret = self._oidc_client_credentials(request, params)
        if client_id != self.client_id:
            raise SlackApiFailure("invalid_client_id")
        if client_secret != self.client_secret:
            raise SlackApiFailure("bad_client_secret")
        grant = self._oidc_grants.get(str(params.get("code") or ""))
        if grant is None or grant.client_id != client_id:
            raise SlackApiFailure("invalid_code")
        if grant.used:
            # RFC 6749 §4.1.2: a code used twice revokes the token it was exchanged for.
            if grant.access_token is not None:
                self._oidc_sessions.pop(grant.access_token, None)
            raise SlackApiFailure("invalid_code")
        if time.monotonic() - grant.issued_at > self.oidc_code_ttl:
            raise SlackApiFailure("invalid_code")
        if str(params.get("redirect_uri") or "") != grant.redirect_uri:
            raise SlackApiFailure("bad_redirect_uri")
        grant.used = True

        tamper, self._oidc_tamper = self._oidc_tamper, None
        team_id = OTHER_TEAM_ID if tamper == "wrong_team" else self.team_id
        access_token = (
            f"xoxp-{secrets.randbelow(10**12)}-{secrets.randbelow(10**12)}"
            f"-{secrets.randbelow(10**13)}-{secrets.token_hex(16)}"
        )
        grant.access_token = access_token
        self._oidc_sessions[access_token] = _OidcSession(grant.user_id, team_id, grant.scopes)

        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": OTHER_ISSUER if tamper == "wrong_issuer" else OIDC_ISSUER,
            "sub": grant.user_id,
            "aud": OTHER_CLIENT_ID if tamper == "wrong_audience" else client_id,
            "exp": now + ID_TOKEN_TTL,
            "iat": now,
            "auth_time": grant.auth_time,
            "nonce": secrets.token_urlsafe(16) if tamper == "wrong_nonce" else grant.nonce,
            "at_hash": _at_hash(access_token),
            **self._oidc_claims(grant.user_id, team_id, grant.scopes),
        }
        if tamper == "expired":
            claims.update(iat=now - 2 * ID_TOKEN_TTL, exp=now - ID_TOKEN_TTL)
            claims["auth_time"] = min(grant.auth_time, claims["iat"])
        key = self._oidc_key
        if tamper == "bad_signature":
            if self._oidc_other_key is None:
                self._oidc_other_key = rsa.generate_private_key(
                    public_exponent=65537, key_size=2048
                )
            key = self._oidc_other_key
        return {
            "ok": True,
            "access_token": access_token,
            "token_type": "Bearer",
            "id_token": _sign_rs256(claims, key, self.kid),
        }

    async def _openid_connect_user_info(
        self, call: RecordedCall, request: web.Request
    ) -> dict[str, Any]:
        """The signed-in person's claims, for an access token from openid.connect.token."""
        if not call.token:
            raise SlackApiFailure("not_authed")
        session = self._oidc_sessions.get(call.token)
        if session is None:
            raise SlackApiFailure("invalid_auth")
        user = self.users.get(session.user_id)
        if user is None or user.get("deleted"):
            raise SlackApiFailure("account_inactive")
        return {"ok": True, **self._oidc_claims(session.user_id, session.team_id, session.scopes)}

    # ------------------------------------------------------------------ Socket Mode

    async def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._socket_tickets.add(ticket)
        return {"ok": True, "url": f"ws://{self._host}:{self._port}/socket-mode?ticket={ticket}"}

    @property
    def socket_connection_count(self) -> int:
        """How many Socket Mode connections are open."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._socket_tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._socket_tickets.discard(ticket)
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        self._sockets.append(ws)
        logger.debug("stand-in socket connected (%d open)", self.socket_connection_count)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": self.socket_connection_count,
                    "debug_info": {
                        "host": "applink-standin",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            await self._notify()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_socket_text(message.data)
        finally:
            self._sockets.remove(ws)
            await self._notify()
            logger.debug("stand-in socket closed (%d open)", self.socket_connection_count)
        return ws

    def _on_socket_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        future = self._pending_acks.get(str(message.get("envelope_id")))
        if future is not None and not future.done():
            payload = message.get("payload")
            future.set_result(payload if isinstance(payload, dict) else None)

    async def wait_socket_connected(
        self,
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> None:
        """Wait until at least ``count`` Socket Mode connections are open."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: self.socket_connection_count >= count)
        except TimeoutError:
            raise TimeoutError(
                f"Timed out after {timeout}s waiting for {count} Socket Mode connection(s); "
                f"{self.socket_connection_count} open; "
                f"{len(self.calls_to('apps.connections.open'))} apps.connections.open call(s)"
            ) from None

    async def socket_send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        timeout: float = 5.0,
    ) -> dict[str, Any] | None:
        """Send an envelope to the most recent Socket Mode connection and wait
        for the app's ack; return the ack's ``payload`` (None if it had none).

        ``envelope_type`` is "slash_commands", "interactive" or "events_api".
        Waits up to ``timeout`` for a connection if none is open.
        """
        deadline = time.monotonic() + timeout
        await self.wait_socket_connected(timeout)
        ws = [w for w in self._sockets if not w.closed][-1]
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = future
        try:
            await ws.send_str(json.dumps(envelope))
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await future
        except TimeoutError:
            raise TimeoutError(
                f"No ack for {envelope_type} envelope {envelope_id} within {timeout}s"
            ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)

    async def drop_socket_connections(
        self,
        *,
        graceful: bool = False,
        timeout: float = 5.0,
    ) -> None:
        """Close every Socket Mode connection (to exercise reconnects).

        By default the server closes the websockets, as when Slack drops a
        connection. With ``graceful`` it sends Slack's ``{"type": "disconnect"}``
        message instead and waits (up to ``timeout``) for the client to close
        the old connection itself, which slack_sdk does after reconnecting.
        """
        sockets = [ws for ws in self._sockets if not ws.closed]
        for ws in sockets:
            if graceful:
                await ws.send_json(
                    {
                        "type": "disconnect",
                        "reason": "refresh_requested",
                        "debug_info": {"host": "applink-standin"},
                    }
                )
            else:
                await ws.close(message=b"dropped by stand-in")
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(
                        lambda: not any(w in self._sockets for w in sockets)
                    )
        except TimeoutError:
            raise TimeoutError(
                f"{sum(w in self._sockets for w in sockets)} dropped socket(s) still open "
                f"after {timeout}s"
            ) from None

    def reset_state(self) -> None:
        """Forget calls, views, messages, faults and Sign in with Slack codes,
        access tokens and tampering (users, tokens, keys and who the browser is
        signed in as are kept)."""
        self.calls.clear()
        self.views.clear()
        self.home_views.clear()
        self.view_users.clear()
        self.messages.clear()
        self.ephemerals.clear()
        self._triggers.clear()
        self._used_triggers.clear()
        self._response_urls.clear()
        self._oidc_grants.clear()
        self._oidc_sessions.clear()
        self._oidc_tamper = None
        self.clear_faults()


async def run_standin(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    standin: SlackStandIn | None = None,
    users: Iterable[tuple[str, str, str]] = (),
    on_ready: Callable[[SlackStandIn], None] | None = None,
) -> None:
    """Serve a stand-in until cancelled.

    ``users`` are ``(user_id, email, name)`` triples to add; ``on_ready`` is
    called once it is listening (e.g. to print :attr:`SlackStandIn.api_url`).
    """
    standin = standin or SlackStandIn()
    for user_id, email, name in users:
        standin.add_user(user_id, email=email, name=name)
    await standin.start(host, port)
    try:
        if on_ready is not None:
            on_ready(standin)
        await asyncio.Event().wait()
    finally:
        await standin.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m bot.standin --port 8765``: serve a stand-in until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve a local Slack Web API stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    def ready(standin: SlackStandIn) -> None:
        print(f"Slack stand-in: {standin.api_url} (bot token {standin.bot_token})", flush=True)

    try:
        asyncio.run(run_standin(args.host, args.port, on_ready=ready))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
