"""The sealed-value format of `store.crypto` (docs/record-encryption.md), without a database."""

from __future__ import annotations

import os

import pytest

from store.crypto import (
    VERSION,
    Cipher,
    IntegrityError,
    LocalKek,
    MissingKeyError,
    bind,
    dek_aad,
    generate_key,
    is_legacy,
)
from store.models import Incident, IncidentAction


def cipher_with_a_data_key(dek_id: int = 41) -> Cipher:
    cipher = Cipher(generate_key())
    cipher.add_data_key(dek_id, os.urandom(32))
    return cipher


def test_a_sealed_value_names_its_version_and_data_key_and_hides_the_text() -> None:
    cipher = cipher_with_a_data_key(41)
    token = cipher.encrypt("hungry since Friday", bind(Incident.narrative_ct, 7))
    assert token[0] == VERSION and int.from_bytes(token[1:5], "big") == 41
    assert b"hungry" not in token and not is_legacy(token)
    assert cipher.decrypt(token, bind(Incident.narrative_ct, 7)) == "hungry since Friday"


@pytest.mark.parametrize(
    "elsewhere",
    [
        bind(Incident.narrative_ct, 8),  # another row
        bind(Incident.parents_reason_ct, 7),  # another column of the row
        bind(IncidentAction.text_ct, 7),  # another table, same id
    ],
    ids=str,
)
def test_a_value_moved_anywhere_else_is_an_integrity_error(elsewhere: object) -> None:
    cipher = cipher_with_a_data_key()
    token = cipher.encrypt("text", bind(Incident.narrative_ct, 7))
    with pytest.raises(IntegrityError, match="does not decrypt where it is stored"):
        cipher.decrypt(token, elsewhere)  # type: ignore[arg-type]


def test_a_value_sealed_with_a_data_key_not_loaded_says_so() -> None:
    token = cipher_with_a_data_key(41).encrypt("text", bind(Incident.narrative_ct, 7))
    with pytest.raises(MissingKeyError, match="data key 41"):
        cipher_with_a_data_key(42).decrypt(token, bind(Incident.narrative_ct, 7))


def test_a_key_encryption_key_unwraps_only_its_own_data_key() -> None:
    kek, other = LocalKek(os.urandom(32)), LocalKek(os.urandom(32))
    assert kek.key_id.startswith("local:") and kek.key_id != other.key_id
    data_key = os.urandom(32)
    wrapped = kek.wrap(data_key, dek_aad(5))
    assert kek.unwrap(wrapped, dek_aad(5)) == data_key
    with pytest.raises(MissingKeyError):
        kek.unwrap(wrapped, dek_aad(6))  # another data key's slot
    with pytest.raises(MissingKeyError):
        other.unwrap(wrapped, dek_aad(5))
