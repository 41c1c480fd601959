"""The transfer pack's format on its own (`store.transfer_format`): every single flipped
bit of a pack is refused before anything is decrypted, a pack opens only for the school
it is addressed to, and cards and receipts say when they are not what they claim."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from store.transfer_format import (
    Receipt,
    SchoolKeys,
    TransferError,
    open_pack,
    open_receipt,
    pack_digest,
    read_card,
    seal_pack,
    sign_receipt,
)

AT = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
LARKSPUR, OAKFIELD = SchoolKeys.generate("Larkspur"), SchoolKeys.generate("Oakfield")


def a_pack(plain: bytes = b"the record") -> bytes:
    return seal_pack(plain, sender=LARKSPUR, recipient=OAKFIELD.card, pack_id="a" * 32, at=AT)


def test_a_pack_opens_for_its_school_with_its_header() -> None:
    header, plain = open_pack(a_pack(), sender=LARKSPUR.card, receiver=OAKFIELD)
    assert plain == b"the record" and header.pack_id == "a" * 32
    assert (header.sender_name, header.recipient_name) == ("Larkspur", "Oakfield")


def test_every_flipped_bit_is_refused() -> None:
    good = a_pack()
    for position in range(len(good)):
        bad = bytearray(good)
        bad[position] ^= 0x80 if position % 2 else 0x01
        with pytest.raises(TransferError):
            open_pack(bytes(bad), sender=LARKSPUR.card, receiver=OAKFIELD)


def test_a_pack_for_another_school_or_from_another_signer_is_refused() -> None:
    with pytest.raises(TransferError, match="addressed to Oakfield"):
        open_pack(a_pack(), sender=LARKSPUR.card, receiver=SchoolKeys.generate("Birchwood"))
    with pytest.raises(TransferError, match="signature does not verify"):
        open_pack(a_pack(), sender=SchoolKeys.generate("Larkspur").card, receiver=OAKFIELD)


def test_a_card_must_match_its_fingerprint_and_version() -> None:
    card = json.loads(OAKFIELD.card.to_json())
    assert read_card(json.dumps(card)) == OAKFIELD.card
    with pytest.raises(TransferError, match="fingerprint does not match"):
        read_card(json.dumps({**card, "fingerprint": "0" * 32}))
    with pytest.raises(TransferError, match="version 2 is not supported"):
        read_card(json.dumps({**card, "version": 2}))
    with pytest.raises(TransferError, match="not a school card"):
        read_card("[]")


def test_a_receipt_verifies_only_with_its_signer() -> None:
    pack = a_pack()
    receipt = Receipt(
        "a" * 32,
        pack_digest(pack),
        OAKFIELD.card.fingerprint,
        "Oakfield",
        LARKSPUR.card.fingerprint,
        AT.isoformat(),
    )
    signed = sign_receipt(receipt, keys=OAKFIELD)
    assert open_receipt(signed, signer=OAKFIELD.card) == receipt
    with pytest.raises(TransferError, match="signature does not verify"):
        open_receipt(signed, signer=LARKSPUR.card)
    changed = signed.replace(b'"pack_id":"aaaa', b'"pack_id":"baaa')
    with pytest.raises(TransferError):
        open_receipt(changed, signer=OAKFIELD.card)
