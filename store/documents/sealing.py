"""Per-file encryption: a random AES-256-GCM key per file, wrapped by its record's key.

A file is sealed in chunks of `CHUNK` bytes. Each sealed chunk is a random 12-byte nonce
followed by the AES-GCM ciphertext; its associated data names the file's token, the
chunk's index and whether it is the last, so chunks cannot be reordered, dropped from the
end or moved to another file. The file's key is wrapped with the key of the record it
belongs to (`store.keyring.record_key`; files stored before record keys: a data key of
`store.crypto`; before that, a key derived from `VIGIL_DATA_KEY`: `Cipher.derived_keys`;
both still read and re-wrapped by `vigil rotate-key`), with associated data naming the file's
row (its token, workspace and what it is attached to): a wrapped key copied to another
row does not unwrap. The file's name is sealed with the file's key too.
"""

from __future__ import annotations

import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.crypto import Cipher, MissingKeyError, RecordKeyNotLoaded, is_legacy_file_key

CHUNK = 64 * 1024
NONCE = 12
WRAP_PURPOSE = b"vigil file key wrap v1"


class FileIntegrityError(Exception):
    """A stored file (its key, name or a chunk) does not decrypt where it is: it was
    changed, moved between rows, or the data key that wrapped it is gone."""


def new_token() -> str:
    """A file's random public identity (32 hex characters), used in every binding."""
    return secrets.token_hex(16)


def new_file_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def row_binding(*, token: str, workspace_id: int, owner: str) -> bytes:
    """The associated data of a wrapped key: the file's row, and what it belongs to."""
    return f"vigil/file-key/{token}/{workspace_id}/{owner}".encode()


def wrap_key(
    cipher: Cipher, file_key: bytes, *, binding: bytes, key_id: int | None = None
) -> bytes:
    """The file's key, sealed with its record's key `key_id` (`store.keyring.record_key`;
    else the current data key), envelope format, bound to its row."""
    return cipher.wrap_file_key(file_key, binding, key_id)


def wrap_key_legacy(cipher: Cipher, file_key: bytes, *, binding: bytes) -> bytes:
    """The format before data keys (a key derived from `VIGIL_DATA_KEY`): tests only."""
    nonce = os.urandom(NONCE)
    kek = cipher.derived_keys(WRAP_PURPOSE)[0]
    return nonce + AESGCM(kek).encrypt(nonce, file_key, binding)


def unwrap_key(cipher: Cipher, wrapped: bytes, *, binding: bytes) -> bytes:
    """The file's key, if it unwraps for this row (either format)."""
    wrapped = bytes(wrapped)
    if not is_legacy_file_key(wrapped):
        try:
            key = cipher.unwrap_file_key(wrapped, binding)
        except RecordKeyNotLoaded:
            raise  # made by another process since: loaded, and the page served again
        except MissingKeyError:
            raise FileIntegrityError(
                "the data key that wrapped this file's key is not loaded"
            ) from None
        if key is None:
            raise FileIntegrityError("the file's key does not unwrap for this row")
        return key
    for kek in cipher.derived_keys(WRAP_PURPOSE):
        try:
            return AESGCM(kek).decrypt(wrapped[:NONCE], wrapped[NONCE:], binding)
        except InvalidTag:
            continue
    raise FileIntegrityError("the file's key does not unwrap for this row")


def _name_binding(token: str) -> bytes:
    return f"vigil/file-name/{token}".encode()


def seal_name(file_key: bytes, name: str, *, token: str) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(file_key).encrypt(nonce, name.encode("utf-8"), _name_binding(token))


def open_name(file_key: bytes, sealed: bytes, *, token: str) -> str:
    sealed = bytes(sealed)
    try:
        plain = AESGCM(file_key).decrypt(sealed[:NONCE], sealed[NONCE:], _name_binding(token))
    except InvalidTag:
        raise FileIntegrityError("the file's name does not decrypt for this row") from None
    return plain.decode("utf-8")


def _chunk_binding(token: str, index: int, final: bool) -> bytes:
    return f"vigil/file-chunk/{token}/".encode() + index.to_bytes(4, "big") + bytes([final])


def seal_chunk(file_key: bytes, plain: bytes, *, token: str, index: int, final: bool) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(file_key).encrypt(nonce, plain, _chunk_binding(token, index, final))


def open_chunk(file_key: bytes, sealed: bytes, *, token: str, index: int, final: bool) -> bytes:
    sealed = bytes(sealed)
    try:
        return AESGCM(file_key).decrypt(
            sealed[:NONCE], sealed[NONCE:], _chunk_binding(token, index, final)
        )
    except InvalidTag:
        raise FileIntegrityError(f"chunk {index} does not decrypt for this file") from None
