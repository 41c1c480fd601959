"""Sign in with Slack: checking the id_token (signature, issuer, audience, nonce, expiry)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt
from aiohttp import web

SLACK_ISSUER = "https://slack.com"
TEAM_CLAIM = "https://slack.com/team_id"
USER_CLAIM = "https://slack.com/user_id"


class InvalidIdToken(Exception):
    """The id_token failed a check; the message names which (never the token)."""


class KeySet:
    """Slack's signing keys, fetched on demand and cached for an hour."""

    def __init__(self, url: str, *, ttl: float = 3600.0) -> None:
        self._url = url
        self._ttl = ttl
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = 0.0

    async def key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys or time.monotonic() - self._fetched > self._ttl:
            await self._refresh()
        if kid not in self._keys:
            raise InvalidIdToken("unknown signing key")
        return self._keys[kid]

    async def _refresh(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(self._url) as response:
            response.raise_for_status()
            document = await response.json()
        self._keys = {
            entry["kid"]: jwt.PyJWK(entry) for entry in document.get("keys", []) if "kid" in entry
        }
        self._fetched = time.monotonic()


async def verify_id_token(
    token: str, *, keys: KeySet, client_id: str, nonce: str
) -> dict[str, Any]:
    """The token's claims, if Slack signed it for us, for this sign-in, and it is current."""
    try:
        header = jwt.get_unverified_header(token)
        key = await keys.key(str(header.get("kid", "")))
        claims = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=SLACK_ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            leeway=30,
        )
    except jwt.InvalidAudienceError:
        raise InvalidIdToken("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise InvalidIdToken("wrong issuer") from None
    except jwt.ExpiredSignatureError:
        raise InvalidIdToken("expired") from None
    except jwt.InvalidSignatureError:
        raise InvalidIdToken("bad signature") from None
    except jwt.PyJWTError as error:
        raise InvalidIdToken(f"invalid token ({type(error).__name__})") from None
    if claims.get("nonce") != nonce:
        raise InvalidIdToken("wrong nonce")
    if not claims.get(TEAM_CLAIM) or not claims.get(USER_CLAIM):
        raise InvalidIdToken("no Slack team or user in the token")
    return claims


JWKS = web.AppKey("jwks", KeySet)
