"""Encryption at rest for narratives and action text (DESIGN §8).

`VIGIL_DATA_KEY` holds one or more Fernet keys separated by commas, newest first. New
text is always encrypted with the first key; older keys still decrypt, so a key can be
rotated by putting a new key in front and, later, running `vigil rotate-key`.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(Exception):
    """Stored text could not be decrypted with any configured key."""


def generate_key() -> str:
    """A fresh random key, in the form `VIGIL_DATA_KEY` expects."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(value: str) -> list[Fernet]:
    """Parse a comma-separated key list, with a clear error for a malformed key."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError("no key given")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ValueError(
                f"key {position} is not a valid key (44 characters: 32 url-safe "
                "base64-encoded bytes). Restore it from the copy kept when Vigil was set up: "
                "a different key cannot read the records already stored"
            ) from None
    return fernets


class Cipher:
    """Encrypts and decrypts text with the configured keys."""

    def __init__(self, data_key: str) -> None:
        self._fernet = MultiFernet(parse_keys(data_key))
        self._raw = [
            base64.urlsafe_b64decode(part.strip()) for part in data_key.split(",") if part.strip()
        ]

    def derived_keys(self, purpose: bytes) -> list[bytes]:
        """32-byte keys for `purpose` (HKDF-SHA256 of each configured key), newest first.

        Used to wrap the per-file keys of attachments (`store.documents.sealing`): one
        derived key per configured data key, so a rotated key still unwraps old files.
        """
        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(raw)
            for raw in self._raw
        ]

    def encrypt(self, text: str) -> bytes:
        """Encrypt text with the newest key."""
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        """Decrypt text written with any configured key."""
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise DecryptionError("no configured key decrypts this text") from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a token with the newest key."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise DecryptionError("no configured key decrypts this text") from None
