"""Signing Sign in with Slack's id_tokens: an RSA key, its JWK and RS256 JSON Web Signatures.

PyJWT signs the tokens when it is installed; a small RS256 signer stands in otherwise
(the tests switch PyJWT off through ``_pyjwt`` to check the fallback).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

try:  # PyJWT signs the id_tokens when installed; a small RS256 signer stands in otherwise.
    import jwt as _pyjwt
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _pyjwt = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    """One RSA key per process: generating one costs ~60 ms, and every stand-in needs one."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The RFC 7517 members of ``key``'s public half (``e``, ``kty``, ``n``)."""
    numbers = key.public_key().public_numbers()
    return {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}


def jwk_thumbprint(key: rsa.RSAPrivateKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``key``'s public JWK (used as its ``kid``)."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def sign_rs256(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    """A compact RS256 JWS of ``claims`` with ``kid`` in its header."""
    if _pyjwt is not None:
        return str(_pyjwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}))
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def at_hash(access_token: str) -> str:
    """OpenID Connect's ``at_hash`` for an RS256 id_token: left half of SHA-256."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])
