"""Encryption at rest: envelope encryption, bound to the row (DESIGN §8, docs/record-encryption.md).

Every encrypted column holds text sealed with AES-256-GCM under a random *data key* (DEK).
The associated data names the table, the column and the row's id, so a ciphertext copied
or swapped into another row (or column) does not decrypt: `IntegrityError`, logged with
the table, column and row id only.

Data keys are stored in the `data_keys` table, each wrapped by a *key-encryption key*
(KEK). The KEKs come from `VIGIL_DATA_KEY` (one or more keys separated by commas, newest
first): new data keys are wrapped with the first, and any of them unwraps. A KMS or Vault
would supply a `KeyEncryptionKey` instead (see `KeyEncryptionKey`). `vigil rotate-key`
re-wraps the data keys under the first KEK, so the older ones can then be removed.

Each concern and each paper record has its own *record key* (`record_keys`), wrapped by
a data key; the values of that record are sealed under it, so destroying the record key
destroys them (crypto-shredding, `store.keyring.destroy_record_key`). Record keys' ids
have the top bit of the 4-byte id set (`RECORD_KEY_BIT`), data keys' never.

Format of a sealed value: one version byte (2), the id of the data key or record key
that sealed it (4 bytes, big-endian), a 12-byte nonce, then the AES-GCM ciphertext and
tag. Values written before this format are Fernet tokens (they begin with the byte `g`);
they still read with the configured keys until `vigil rotate-key` converts them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = structlog.get_logger(__name__)

VERSION = 2
NONCE = 12
_HEADER = 1 + 4 + NONCE
FILE_KEY_WRAPPED = _HEADER + 32 + 16  # a wrapped 32-byte file key in the current format


class DecryptionError(Exception):
    """Stored text could not be decrypted with any configured key."""


class IntegrityError(DecryptionError):
    """A ciphertext does not decrypt where it is stored: it was changed or moved."""


class MissingKeyError(DecryptionError):
    """A data key the stored text needs is not available (its KEK is not configured)."""


class RecordKeyNotLoaded(MissingKeyError):
    """A value is sealed under a record key this process has not loaded (made by another
    process since it loaded its keys, or destroyed): `store.keyring.load_record_keys`
    then try again (the web middleware does, once)."""

    def __init__(self, key_id: int) -> None:
        super().__init__(f"record key {key_id} is not loaded")
        self.key_id = key_id


RECORD_KEY_BIT = 1 << 31


def is_record_key(key_id: int) -> bool:
    return key_id >= RECORD_KEY_BIT


def key_id_of(token: bytes) -> int | None:
    """The id of the key that sealed a value (bound format), or None (legacy)."""
    token = bytes(token)
    if is_legacy(token) or len(token) < _HEADER:
        return None
    return int.from_bytes(token[1:5], "big")


class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys. The local one derives from `VIGIL_DATA_KEY`; a KMS or
    Vault transit key would implement the same two calls (encrypt/decrypt with the
    associated data as encryption context) and a stable `key_id` (e.g. the key's ARN)."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes: ...


class LocalKek:
    """A KEK from one `VIGIL_DATA_KEY` entry: AES-256-GCM with an HKDF-derived key."""

    def __init__(self, raw: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"vigil kek v1"
        ).derive(raw)
        self._id = "local:" + hashlib.sha256(b"vigil kek id\0" + self._key).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._id

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + AESGCM(self._key).encrypt(nonce, data_key, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self._key).decrypt(wrapped[:NONCE], wrapped[NONCE:], aad)
        except InvalidTag:
            raise MissingKeyError("this key-encryption key does not unwrap the data key") from None


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


@dataclass(frozen=True)
class Binding:
    """Where a ciphertext belongs: its table, column and row id (the associated data)."""

    table: str
    column: str
    row_id: object

    @property
    def aad(self) -> bytes:
        return f"vigil/v2/{self.table}/{self.column}/{self.row_id}".encode()

    def __str__(self) -> str:
        return f"{self.table}.{self.column} row {self.row_id}"


def bind(column: Any, row_id: object) -> Binding:
    """The binding of `column` (a mapped attribute, e.g. `Incident.narrative_ct`) in a row."""
    return Binding(column.class_.__tablename__, column.key, row_id)


def dek_aad(dek_id: int) -> bytes:
    return f"vigil/data-key/{dek_id}".encode()


def record_key_aad(key_id: int, owner: str) -> bytes:
    """The associated data of a wrapped record key: its id and its record
    (`incident:<id>` or `paper:<id>`)."""
    return f"vigil/record-key/{key_id}/{owner}".encode()


def is_legacy(token: bytes) -> bool:
    """True for a value written before the bound format (a Fernet token)."""
    return not token or token[0] != VERSION


def is_legacy_file_key(wrapped: bytes) -> bool:
    return len(wrapped) != FILE_KEY_WRAPPED or wrapped[0] != VERSION


# Every cipher of the process: a row that decrypts itself (`store.models.Pupil.details`,
# `store.models.Referral.reference`) finds here the cipher that loaded its key (ids are
# random numbers: one per database).
_CIPHERS: weakref.WeakSet[Cipher] = weakref.WeakSet()


def open_loaded(token: bytes, where: Binding) -> str:
    """Open a value (bound format) with the cipher that loaded its key."""
    key_id = key_id_of(token)
    if key_id is None:
        raise IntegrityError(f"{where} does not hold a sealed value")
    cipher = next((c for c in list(_CIPHERS) if c.has_data_key(key_id)), None)
    if cipher is None:
        if is_record_key(key_id):
            raise RecordKeyNotLoaded(key_id)
        raise MissingKeyError(f"{where}: its data key is not loaded (store.keyring.load_data_keys)")
    return cipher.decrypt(token, where)


class Cipher:
    """Seals and opens values with the data keys, and reads legacy Fernet values."""

    def __init__(self, data_key: str | Sequence[KeyEncryptionKey]) -> None:
        if isinstance(data_key, str):
            self._fernet: MultiFernet | None = MultiFernet(parse_keys(data_key))
            self._raw = [
                base64.urlsafe_b64decode(part.strip())
                for part in data_key.split(",")
                if part.strip()
            ]
            self.keks: list[KeyEncryptionKey] = [LocalKek(raw) for raw in self._raw]
        else:
            self._fernet, self._raw, self.keks = None, [], list(data_key)
        self._deks: dict[int, AESGCM] = {}  # data keys and record keys, by id
        self.current: int | None = None
        # Record keys (`record_keys`) loaded up to this creation time: see
        # `store.keyring.load_record_keys`.
        self.record_keys_loaded_at: dt.datetime | None = None
        _CIPHERS.add(self)
        # Legacy (unbound) values read until `vigil rotate-key` has converted them all.
        self.accept_legacy = True

    # -- data keys ---------------------------------------------------------------------

    def add_data_key(self, dek_id: int, key: bytes, *, current: bool = False) -> None:
        self._deks[dek_id] = AESGCM(key)
        if current or self.current is None:
            self.current = dek_id

    def add_record_key(self, key_id: int, key: bytes) -> None:
        assert is_record_key(key_id)
        self._deks[key_id] = AESGCM(key)

    def forget_key(self, key_id: int) -> None:
        """Drop a record key from memory (it was destroyed)."""
        self._deks.pop(key_id, None)

    def has_data_key(self, dek_id: int) -> bool:
        return dek_id in self._deks

    def record_key_count(self) -> int:
        return sum(1 for key_id in self._deks if is_record_key(key_id))

    def _dek(self, dek_id: int) -> AESGCM:
        try:
            return self._deks[dek_id]
        except KeyError:
            if is_record_key(dek_id):
                raise RecordKeyNotLoaded(dek_id) from None
            raise MissingKeyError(f"data key {dek_id} is not loaded") from None

    def _seal(self, plain: bytes, aad: bytes, key_id: int | None = None) -> bytes:
        """Sealed under `key_id` (a record key), else the current data key."""
        if key_id is None:
            key_id = self.current
        if key_id is None:
            raise MissingKeyError("no data key is loaded (store.encrypted.load_data_keys)")
        nonce = os.urandom(NONCE)
        head = bytes([VERSION]) + key_id.to_bytes(4, "big") + nonce
        return head + self._dek(key_id).encrypt(nonce, plain, aad)

    def _open(self, token: bytes, aad: bytes) -> bytes:
        dek = self._dek(int.from_bytes(token[1:5], "big"))
        return dek.decrypt(token[5:_HEADER], token[_HEADER:], aad)

    # -- values ------------------------------------------------------------------------

    def encrypt(self, text: str, where: Binding, *, key_id: int | None = None) -> bytes:
        """Seal text for one row's column (under the record key `key_id`, if given)."""
        return self._seal(text.encode("utf-8"), where.aad, key_id)

    def decrypt(self, token: bytes, where: Binding) -> str:
        """Open a value stored at `where`; `IntegrityError` (logged) if it belongs elsewhere."""
        token = bytes(token)
        if is_legacy(token):
            if not self.accept_legacy:
                log.error(
                    "crypto.integrity_error",
                    table=where.table,
                    column=where.column,
                    row=where.row_id,
                    legacy=True,
                )
                raise IntegrityError(
                    f"{where} holds a value in the format from before data keys, though "
                    "every value was converted: it was copied in, and is refused"
                )
            return self.decrypt_legacy(token)
        try:
            return self._open(token, where.aad).decode("utf-8")
        except InvalidTag:
            log.error(
                "crypto.integrity_error", table=where.table, column=where.column, row=where.row_id
            )
            raise IntegrityError(
                f"{where} does not decrypt where it is stored: it was changed or moved"
            ) from None

    def decrypt_legacy(self, token: bytes) -> str:
        """Decrypt a value written before the bound format, with any configured key."""
        if self._fernet is None:
            raise DecryptionError("legacy values need the keys of VIGIL_DATA_KEY")
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise DecryptionError("no configured key decrypts this text") from None

    def legacy_encrypt(self, text: str) -> bytes:
        """A value in the legacy Fernet format: for tests of the conversion, and for the
        benchmarks' bulk seed (a pool of values reused across rows, so not bound)."""
        assert self._fernet is not None
        return self._fernet.encrypt(text.encode("utf-8"))

    # -- file keys (store.documents.sealing) -------------------------------------------

    def wrap_file_key(self, file_key: bytes, binding: bytes, key_id: int | None = None) -> bytes:
        return self._seal(file_key, binding, key_id)

    def unwrap_file_key(self, wrapped: bytes, binding: bytes) -> bytes | None:
        """The file key, or None when it does not unwrap here (legacy handled by caller)."""
        try:
            return self._open(wrapped, binding)
        except InvalidTag:
            return None

    def derived_keys(self, purpose: bytes) -> list[bytes]:
        """32-byte keys for `purpose` (HKDF-SHA256 of each configured key), newest first.

        Only for file keys wrapped before the data-key format (`store.documents.sealing`).
        """
        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(raw)
            for raw in self._raw
        ]
