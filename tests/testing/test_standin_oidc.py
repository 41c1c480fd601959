"""Sign in with Slack (OpenID Connect) on the Slack stand-in, end to end.

The browser leg goes through aiohttp (redirects not followed), the Web API leg
through slack_sdk's real AsyncWebClient, and id_tokens are verified with PyJWT
against the JWKS the stand-in serves, the way an app verifies Slack's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OpenIDConnectAuthorizeUrlGenerator
from slack_sdk.web.async_client import AsyncWebClient

import testing.standin.tokens as standin_module
from testing.standin import OTHER_TEAM_ID, SlackStandIn

jwt = pytest.importorskip("jwt", reason="PyJWT (pyjwt[crypto]) is needed to verify id_tokens")

pytestmark = [
    pytest.mark.asyncio,
    # slack_sdk's openid_connect_token sends HTTP Basic through aiohttp.BasicAuth.
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
]

TEACHER = "U0TEACHER"
REDIRECT_URI = "https://vigil.school.example/auth/slack/callback"
STATE = "state-abc123"
NONCE = "nonce-xyz789"
USER_ID_CLAIM = "https://slack.com/user_id"
TEAM_ID_CLAIM = "https://slack.com/team_id"


class NonceMismatch(Exception):
    """The id_token's nonce is not the one the app sent."""


class TeamMismatch(Exception):
    """The id_token is for another workspace."""


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as running:
        running.add_user(TEACHER, email="teacher@school.example", name="Ada Lovelace")
        running.oidc_sign_in_as(TEACHER)
        yield running


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as running:
        yield running


def authorize_query(standin: SlackStandIn, **overrides: str | None) -> dict[str, str]:
    query: dict[str, str | None] = {
        "response_type": "code",
        "scope": "openid email profile",
        "client_id": standin.client_id,
        "state": STATE,
        "nonce": NONCE,
        "redirect_uri": REDIRECT_URI,
    }
    query.update(overrides)
    return {k: v for k, v in query.items() if v is not None}


async def authorize(
    session: aiohttp.ClientSession, standin: SlackStandIn, **overrides: str | None
) -> tuple[int, str, str]:
    """Send "the browser" to authorize; return (status, Location header, body)."""
    async with session.get(
        standin.authorize_url,
        params=authorize_query(standin, **overrides),
        allow_redirects=False,
    ) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def get_code(
    session: aiohttp.ClientSession, standin: SlackStandIn, **overrides: str | None
) -> str:
    status, location, _ = await authorize(session, standin, **overrides)
    assert status == 302, location
    return parse_qs(urlsplit(location).query)["code"][0]


async def exchange(standin: SlackStandIn, code: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "code": code,
        "redirect_uri": REDIRECT_URI,
    }
    arguments.update(overrides)
    client = AsyncWebClient(base_url=standin.api_url, timeout=2)
    return await client.openid_connect_token(**arguments)


async def fetch_jwks(session: aiohttp.ClientSession, standin: SlackStandIn) -> dict[str, Any]:
    async with session.get(standin.jwks_url) as response:
        assert response.status == 200
        return await response.json()


def signing_key(id_token: str, jwks: dict[str, Any]) -> Any:
    kid = jwt.get_unverified_header(id_token)["kid"]
    matching = [k for k in jwks["keys"] if k["kid"] == kid]
    assert matching, f"no key {kid} in the JWKS"
    return jwt.PyJWK(matching[0]).key


def verify(
    id_token: str,
    jwks: dict[str, Any],
    *,
    client_id: str,
    team_id: str,
    nonce: str = NONCE,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check an id_token as a careful app does; return its claims."""
    claims = jwt.decode(
        id_token,
        key=signing_key(id_token, jwks),
        algorithms=["RS256"],
        audience=client_id,
        issuer="https://slack.com",
        options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"], **(options or {})},
    )
    if claims["nonce"] != nonce:
        raise NonceMismatch(claims["nonce"])
    if claims[TEAM_ID_CLAIM] != team_id:
        raise TeamMismatch(claims[TEAM_ID_CLAIM])
    return claims


async def slack_error(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    return str(caught.value.response["error"])


# --------------------------------------------------------------------------- happy path


async def test_sign_in_end_to_end(standin: SlackStandIn, session: aiohttp.ClientSession) -> None:
    status, location, _ = await authorize(session, standin, team=standin.team_id)
    assert status == 302
    assert location.startswith(REDIRECT_URI + "?")
    returned = parse_qs(urlsplit(location).query)
    assert returned["state"] == [STATE]
    code = returned["code"][0]

    authorize_call = standin.calls_to("openid.connect.authorize")[0]
    assert authorize_call.ok and authorize_call.status == 302
    assert authorize_call.params == authorize_query(standin, team=standin.team_id)
    assert authorize_call.response is not None and authorize_call.response["code"] == code

    tokens = await exchange(standin, code)
    assert tokens["ok"] is True
    assert tokens["token_type"] == "Bearer"
    access_token = tokens["access_token"]
    assert access_token.startswith("xoxp-")
    token_call = standin.calls_to("openid.connect.token")[0]
    assert token_call.ok and token_call.token is None  # no bot token needed

    jwks = await fetch_jwks(session, standin)
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert key["kid"] == standin.kid and key["e"] == "AQAB" and len(key["n"]) > 300
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "RS256"

    claims = verify(tokens["id_token"], jwks, client_id=standin.client_id, team_id=standin.team_id)
    assert claims["iss"] == "https://slack.com"
    assert claims["aud"] == standin.client_id
    assert claims["sub"] == claims[USER_ID_CLAIM] == TEACHER
    assert claims[TEAM_ID_CLAIM] == standin.team_id
    assert claims["email"] == "teacher@school.example" and claims["email_verified"] is True
    assert claims["name"] == "Ada Lovelace"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["auth_time"] <= claims["iat"]
    digest = hashlib.sha256(access_token.encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    user_client = AsyncWebClient(token=access_token, base_url=standin.api_url, timeout=2)
    info = await user_client.openid_connect_userInfo()
    assert info["ok"] is True
    assert info["sub"] == info[USER_ID_CLAIM] == TEACHER
    assert info[TEAM_ID_CLAIM] == standin.team_id
    assert info["email"] == "teacher@school.example" and info["email_verified"] is True
    assert (info["name"], info["given_name"], info["family_name"]) == (
        "Ada Lovelace",
        "Ada",
        "Lovelace",
    )
    assert info["https://slack.com/team_name"] == standin.team_name
    assert info["https://slack.com/team_domain"] == "vigil-demo"
    assert standin.calls_to("openid.connect.userInfo", ok_only=True)[0].token == access_token


async def test_slack_sdk_authorize_url_generator_works(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    generator = OpenIDConnectAuthorizeUrlGenerator(
        client_id=standin.client_id,
        scopes=["openid", "email", "profile"],  # slack_sdk joins them with commas
        redirect_uri=REDIRECT_URI,
        authorization_url=standin.authorize_url,
    )
    url = generator.generate(state=STATE, nonce=NONCE, team=standin.team_id)
    async with session.get(url, allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = await exchange(standin, code)
    jwks = await fetch_jwks(session, standin)
    verify(tokens["id_token"], jwks, client_id=standin.client_id, team_id=standin.team_id)


async def test_client_secret_post_is_accepted(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    code = await get_code(session, standin)
    form = {
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "grant_type": "authorization_code",
    }
    async with session.post(f"{standin.api_url}openid.connect.token", data=form) as response:
        body = await response.json()
    assert body["ok"] is True and body["id_token"].count(".") == 2


async def test_redirect_uri_query_is_kept(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    status, location, _ = await authorize(session, standin, redirect_uri=REDIRECT_URI + "?a=1")
    assert status == 302
    query = parse_qs(urlsplit(location).query)
    assert query["a"] == ["1"] and query["state"] == [STATE] and "code" in query


async def test_openid_scope_alone_gives_no_email_or_profile(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    code = await get_code(session, standin, scope="openid")
    tokens = await exchange(standin, code)
    user_client = AsyncWebClient(token=tokens["access_token"], base_url=standin.api_url)
    info = await user_client.openid_connect_userInfo()
    assert info["sub"] == TEACHER
    assert "email" not in info and "name" not in info


async def test_discovery_document_points_at_the_stand_in(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    async with session.get(standin.openid_configuration_url) as response:
        document = await response.json()
    assert document["issuer"] == "https://slack.com"
    assert document["authorization_endpoint"] == standin.authorize_url
    assert document["jwks_uri"] == standin.jwks_url
    assert document["token_endpoint"] == f"{standin.api_url}openid.connect.token"


# --------------------------------------------------------------------------- token errors


async def test_code_is_single_use_and_reuse_revokes_the_token(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    code = await get_code(session, standin)
    tokens = await exchange(standin, code)
    assert await slack_error(exchange(standin, code)) == "invalid_code"
    user_client = AsyncWebClient(token=tokens["access_token"], base_url=standin.api_url)
    assert await slack_error(user_client.openid_connect_userInfo()) == "invalid_auth"


async def test_unknown_and_expired_codes(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    assert await slack_error(exchange(standin, "123.456.deadbeef")) == "invalid_code"
    standin.oidc_code_ttl = 0.0
    code = await get_code(session, standin)
    await asyncio.sleep(0.01)
    assert await slack_error(exchange(standin, code)) == "invalid_code"


async def test_client_authentication(standin: SlackStandIn, session: aiohttp.ClientSession) -> None:
    code = await get_code(session, standin)
    assert await slack_error(exchange(standin, code, client_secret="nope")) == ("bad_client_secret")
    assert await slack_error(exchange(standin, code, client_id="1111.2222")) == (
        "invalid_client_id"
    )
    # A failed client authentication does not use up the code.
    assert (await exchange(standin, code))["ok"] is True


async def test_redirect_uri_must_match_authorize(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    code = await get_code(session, standin)
    wrong = exchange(standin, code, redirect_uri="https://evil.example/callback")
    assert await slack_error(wrong) == "bad_redirect_uri"
    assert await slack_error(exchange(standin, code, redirect_uri=None)) == "bad_redirect_uri"


async def test_user_info_needs_an_oidc_access_token(standin: SlackStandIn) -> None:
    bot_client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
    assert await slack_error(bot_client.openid_connect_userInfo()) == "invalid_auth"
    anonymous = AsyncWebClient(base_url=standin.api_url)
    assert await slack_error(anonymous.openid_connect_userInfo()) == "not_authed"


# --------------------------------------------------------------------------- tampering


TAMPERING = [
    ("wrong_audience", jwt.InvalidAudienceError, {"verify_aud": False}),
    ("wrong_issuer", jwt.InvalidIssuerError, {"verify_iss": False}),
    ("bad_signature", jwt.InvalidSignatureError, None),
    ("wrong_nonce", NonceMismatch, None),
    ("expired", jwt.ExpiredSignatureError, {"verify_exp": False}),
    ("wrong_team", TeamMismatch, None),
]


@pytest.mark.parametrize(("kind", "error", "relaxed"), TAMPERING, ids=[t[0] for t in TAMPERING])
async def test_tampered_id_token_fails_its_check(
    standin: SlackStandIn,
    session: aiohttp.ClientSession,
    kind: str,
    error: type[Exception],
    relaxed: dict[str, Any] | None,
) -> None:
    jwks = await fetch_jwks(session, standin)
    standin.oidc_tamper(kind)
    tokens = await exchange(standin, await get_code(session, standin))
    expected = {"client_id": standin.client_id, "team_id": standin.team_id}
    with pytest.raises(error):
        verify(tokens["id_token"], jwks, **expected)

    if relaxed is not None:  # only the tampered check fails
        verify(tokens["id_token"], jwks, **expected, options=relaxed)
    unverified = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert unverified["sub"] == TEACHER
    if kind == "bad_signature":
        assert jwt.get_unverified_header(tokens["id_token"])["kid"] == standin.kid
        assert unverified["aud"] == standin.client_id and unverified["nonce"] == NONCE
    if kind == "wrong_team":
        assert unverified[TEAM_ID_CLAIM] == OTHER_TEAM_ID
        user_client = AsyncWebClient(token=tokens["access_token"], base_url=standin.api_url)
        assert (await user_client.openid_connect_userInfo())[TEAM_ID_CLAIM] == OTHER_TEAM_ID

    # Tampering applies to one token only.
    tokens = await exchange(standin, await get_code(session, standin))
    verify(tokens["id_token"], jwks, **expected)


async def test_tamper_can_be_cleared_and_rejects_unknown_kinds(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    standin.oidc_tamper("expired")
    standin.oidc_tamper(None)
    tokens = await exchange(standin, await get_code(session, standin))
    jwks = await fetch_jwks(session, standin)
    verify(tokens["id_token"], jwks, client_id=standin.client_id, team_id=standin.team_id)
    with pytest.raises(ValueError, match="unknown tamper kind"):
        standin.oidc_tamper("alg_none")


async def test_fallback_signer_without_pyjwt(
    standin: SlackStandIn, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(standin_module, "_pyjwt", None)
    tokens = await exchange(standin, await get_code(session, standin))
    jwks = await fetch_jwks(session, standin)
    claims = verify(tokens["id_token"], jwks, client_id=standin.client_id, team_id=standin.team_id)
    assert claims["sub"] == TEACHER


# --------------------------------------------------------------------------- authorize errors


async def test_no_user_signed_in_is_a_400(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    standin.oidc_sign_in_as(None)
    status, location, body = await authorize(session, standin)
    assert status == 400 and not location
    assert "no user signed in to the stand-in" in body
    call = standin.calls_to("openid.connect.authorize")[0]
    assert call.status == 400 and call.error == "not_signed_in" and not call.ok


BAD_AUTHORIZE = [
    ("response_type", {"response_type": "token"}, "invalid_response_type"),
    ("client_id", {"client_id": "1111.2222"}, "invalid_client_id"),
    ("no_client_id", {"client_id": None}, "invalid_client_id"),
    ("no_openid_scope", {"scope": "email profile"}, "invalid_scope"),
    ("unknown_scope", {"scope": "openid chat:write"}, "invalid_scope"),
    ("no_redirect_uri", {"redirect_uri": None}, "bad_redirect_uri"),
    ("relative_redirect_uri", {"redirect_uri": "/callback"}, "bad_redirect_uri"),
    ("no_state", {"state": None}, "missing_state"),
    ("no_nonce", {"nonce": None}, "missing_nonce"),
    ("other_team", {"team": OTHER_TEAM_ID}, "team_mismatch"),
]


@pytest.mark.parametrize(
    ("overrides", "error"), [b[1:] for b in BAD_AUTHORIZE], ids=[b[0] for b in BAD_AUTHORIZE]
)
async def test_bad_authorize_requests_are_400(
    standin: SlackStandIn,
    session: aiohttp.ClientSession,
    overrides: dict[str, str | None],
    error: str,
) -> None:
    status, location, body = await authorize(session, standin, **overrides)
    assert status == 400 and not location and "code=" not in body
    assert standin.calls_to("openid.connect.authorize")[0].error == error


async def test_deactivated_user_cannot_sign_in(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    standin.add_user(TEACHER, email="teacher@school.example", name="Ada Lovelace", deleted=True)
    status, _, _ = await authorize(session, standin)
    assert status == 400
    assert standin.calls_to("openid.connect.authorize")[0].error == "account_inactive"


async def test_sign_in_as_needs_a_known_person(standin: SlackStandIn) -> None:
    with pytest.raises(KeyError):
        standin.oidc_sign_in_as("U0NOBODY")
    with pytest.raises(ValueError):
        standin.oidc_sign_in_as(standin.bot_user_id)


# --------------------------------------------------------------------------- faults


async def test_faults_on_browser_endpoints_are_by_name_only(
    standin: SlackStandIn, session: aiohttp.ClientSession
) -> None:
    standin.inject_status("*", 500)
    status, _, _ = await authorize(session, standin)
    assert status == 302  # a wildcard fault is for Web API methods
    standin.clear_faults()

    standin.inject_status("openid.connect.keys", 503)
    async with session.get(standin.jwks_url) as response:
        assert response.status == 503
    assert (await fetch_jwks(session, standin))["keys"][0]["kid"] == standin.kid

    standin.inject_error("openid.connect.token", "ratelimited")
    code = await get_code(session, standin)
    assert await slack_error(exchange(standin, code)) == "ratelimited"
