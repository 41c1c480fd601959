"""Sign in with Slack (OpenID Connect), Slack's side of it.

:class:`OidcApi` serves the browser's ``/openid/connect/authorize`` redirect, the JWKS at
``/openid/connect/keys`` and discovery at ``/.well-known/openid-configuration`` (recorded
as ``openid.connect.authorize``, ``openid.connect.keys`` and ``openid.configuration``),
and the Web API methods ``openid.connect.token`` and ``openid.connect.userInfo``, with
RS256 id_tokens. :meth:`OidcApi.oidc_sign_in_as` chooses who "the browser" is signed in
to Slack as; :meth:`OidcApi.oidc_tamper` spoils the next id_token for negative tests.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from testing.standin.calls import RecordedCall, SlackApiFailure
from testing.standin.core import WORKSPACE_URL, slack_method
from testing.standin.tokens import at_hash, jwk_thumbprint, public_jwk, sign_rs256, signing_key
from testing.standin.users import UsersApi

logger = logging.getLogger(__name__)

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


def _with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string (existing ones kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class OidcApi(UsersApi):
    """Slack's OpenID Connect provider for the app's Sign in with Slack."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        #: How long (seconds) an authorization code can be exchanged; Slack's is 5 minutes.
        self.oidc_code_ttl = 300.0
        self._oidc_key = signing_key()
        self._oidc_other_key: rsa.RSAPrivateKey | None = None
        self.kid = jwk_thumbprint(self._oidc_key)
        self._oidc_user: str | None = None
        self._oidc_grants: dict[str, _OidcGrant] = {}
        self._oidc_sessions: dict[str, _OidcSession] = {}
        self._oidc_tamper: str | None = None

    def _routes(self) -> list[web.RouteDef]:
        return [
            *super()._routes(),
            web.get("/openid/connect/authorize", self._handle_oidc_authorize),
            web.get("/openid/connect/keys", self._handle_oidc_keys),
            web.get("/.well-known/openid-configuration", self._handle_oidc_configuration),
        ]

    def _forget_state(self) -> None:
        super()._forget_state()
        self._oidc_grants.clear()
        self._oidc_sessions.clear()
        self._oidc_tamper = None

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
        key = {**public_jwk(self._oidc_key), "kid": self.kid, "use": "sig", "alg": "RS256"}
        return {"keys": [key]}

    def _team_domain(self, team_id: str) -> str:
        if team_id != self.team_id:
            return "elsewhere-academy"
        return (urlsplit(WORKSPACE_URL).hostname or "vigil-demo").split(".", 1)[0]

    async def _browser_call(
        self, request: web.Request, method: str, params: dict[str, Any]
    ) -> tuple[RecordedCall, web.StreamResponse | None]:
        """Record a browser-facing request as a call to ``method``; the fault queued for it
        by name, if any, answers it at once (the second value)."""
        call = self._record(method, params)
        await self._notify()
        return call, await self._apply_fault(request, call, wildcard=False)

    async def _oidc_error_page(
        self, call: RecordedCall, error: str, message: str
    ) -> web.StreamResponse:
        """A 400 error page, as Slack shows the browser for a bad authorize request."""
        page = (
            "<!doctype html>\n<html><head><title>Sign in with Slack: error</title></head>"
            f"<body><h1>Something went wrong</h1><p>{html.escape(message)}</p>"
            f"<p><code>{html.escape(error)}</code></p></body></html>\n"
        )
        response = web.Response(status=400, text=page, content_type="text/html")
        summary = {"ok": False, "error": error, "message": message}
        return await self._answer(call, 400, summary, response)

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
        logger.debug("stand-in received %s", "openid.connect.authorize")
        call, faulted = await self._browser_call(request, "openid.connect.authorize", query)
        if faulted is not None:
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
        return await self._answer(call, 302, summary, response)

    async def _handle_oidc_keys(self, request: web.Request) -> web.StreamResponse:
        """``GET /openid/connect/keys``: the JWKS (recorded as ``openid.connect.keys``)."""
        call, faulted = await self._browser_call(
            request, "openid.connect.keys", dict(request.query)
        )
        if faulted is not None:
            return faulted
        jwks = self.jwks
        return await self._answer(call, 200, {"ok": True, **jwks}, web.json_response(jwks))

    async def _handle_oidc_configuration(self, request: web.Request) -> web.StreamResponse:
        """``GET /.well-known/openid-configuration``: Slack's discovery document,
        with this stand-in's endpoints (recorded as ``openid.configuration``)."""
        call, faulted = await self._browser_call(
            request, "openid.configuration", dict(request.query)
        )
        if faulted is not None:
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
        return await self._answer(call, 200, {"ok": True, **document}, web.json_response(document))

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

    @slack_method("openid.connect.token", with_request=True)
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
            "at_hash": at_hash(access_token),
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
            "id_token": sign_rs256(claims, key, self.kid),
        }

    @slack_method("openid.connect.userInfo", with_request=True)
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
