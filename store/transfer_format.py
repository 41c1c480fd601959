"""The transfer pack and receipt formats (docs/transfer-format.md): pure, no database.

A school has two long-term key pairs: X25519 to receive packs, Ed25519 to sign what it
sends. Its *card* is its name and the two public keys. A pack is a record encrypted to
the receiving school with HPKE base mode (X25519, HKDF-SHA256, AES-256-GCM;
`cryptography`'s `hpke`), the header passed as HPKE's `info` so it is authenticated,
and signed by the sending school with Ed25519 over the magic, the header and the
ciphertext. A receipt is a signed statement naming the pack.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

VERSION = 1
PACK_MAGIC = b"VIGIL-TRANSFER-PACK\n"
RECEIPT_MAGIC = b"VIGIL-TRANSFER-RECEIPT\n"
CARD_KIND = "vigil-school-card"
SIGNATURE = 64
MAX_HEADER = 16 * 1024
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_RAW = serialization.Encoding.Raw


class TransferError(Exception):
    """A pack, receipt or card refused: the message is one line, for the person."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TransferError("malformed: a key is missing")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise TransferError("malformed: a key is not base64") from None


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Card:
    """A school's public identity: its name and its two public keys."""

    name: str
    receive_key: bytes  # X25519, 32 bytes
    sign_key: bytes  # Ed25519, 32 bytes

    @property
    def fingerprint(self) -> str:
        """SHA-256 of both public keys, as 32 hex characters: the school's id in packs."""
        return hashlib.sha256(self.receive_key + self.sign_key).hexdigest()[:32]

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "kind": CARD_KIND,
                    "version": VERSION,
                    "name": self.name,
                    "receive_x25519": _b64(self.receive_key),
                    "sign_ed25519": _b64(self.sign_key),
                    "fingerprint": self.fingerprint,
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )


def read_card(text: str) -> Card:
    """A card file's content (TransferError if it is not one, or its fingerprint lies)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise TransferError("not a school card (not JSON)") from None
    if not isinstance(data, dict) or data.get("kind") != CARD_KIND:
        raise TransferError("not a school card")
    if data.get("version") != VERSION:
        raise TransferError(f"school card version {data.get('version')!r} is not supported")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise TransferError("the school card has no name")
    card = Card(name.strip(), _unb64(data.get("receive_x25519")), _unb64(data.get("sign_ed25519")))
    if len(card.receive_key) != 32 or len(card.sign_key) != 32:
        raise TransferError("the school card's keys are the wrong length")
    if data.get("fingerprint") not in (None, card.fingerprint):
        raise TransferError("the school card's fingerprint does not match its keys")
    return card


@dataclass(frozen=True)
class SchoolKeys:
    """A school's private keys (kept encrypted at rest by `store.transfers`)."""

    name: str
    receive: X25519PrivateKey
    sign: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> SchoolKeys:
        return cls(name, X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, name: str, receive: bytes, sign: bytes) -> SchoolKeys:
        return cls(
            name,
            X25519PrivateKey.from_private_bytes(receive),
            Ed25519PrivateKey.from_private_bytes(sign),
        )

    def raw(self) -> tuple[bytes, bytes]:
        private = serialization.PrivateFormat.Raw
        none = serialization.NoEncryption()
        return (
            self.receive.private_bytes(_RAW, private, none),
            self.sign.private_bytes(_RAW, private, none),
        )

    @property
    def card(self) -> Card:
        public = serialization.PublicFormat.Raw
        return Card(
            self.name,
            self.receive.public_key().public_bytes(_RAW, public),
            self.sign.public_key().public_bytes(_RAW, public),
        )


@dataclass(frozen=True)
class Header:
    """What a pack says about itself: authenticated by HPKE and covered by the signature."""

    pack_id: str
    created_at: str
    sender: str  # fingerprint
    sender_name: str
    recipient: str  # fingerprint
    recipient_name: str

    def to_bytes(self) -> bytes:
        return _canonical(
            {
                "format": "vigil-transfer-pack",
                "version": VERSION,
                "pack_id": self.pack_id,
                "created_at": self.created_at,
                "sender": {"fingerprint": self.sender, "name": self.sender_name},
                "recipient": {"fingerprint": self.recipient, "name": self.recipient_name},
                "suite": "HPKE-base X25519 HKDF-SHA256 AES-256-GCM; Ed25519",
            }
        )


def _header_of(raw: bytes) -> Header:
    try:
        data = json.loads(raw)
        if data["format"] != "vigil-transfer-pack":
            raise TransferError("not a Vigil transfer pack")
        if data["version"] != VERSION:
            raise TransferError(f"transfer pack version {data['version']!r} is not supported")
        return Header(
            str(data["pack_id"]),
            str(data["created_at"]),
            str(data["sender"]["fingerprint"]),
            str(data["sender"]["name"]),
            str(data["recipient"]["fingerprint"]),
            str(data["recipient"]["name"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TransferError("the pack's header is damaged") from None


def seal_pack(
    plaintext: bytes, *, sender: SchoolKeys, recipient: Card, pack_id: str, at: dt.datetime
) -> bytes:
    """The pack file: magic, header, HPKE ciphertext to `recipient`, sender's signature."""
    header = Header(
        pack_id,
        at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        sender.card.fingerprint,
        sender.name,
        recipient.fingerprint,
        recipient.name,
    ).to_bytes()
    ciphertext = SUITE.encrypt(
        plaintext, X25519PublicKey.from_public_bytes(recipient.receive_key), info=header
    )
    body = PACK_MAGIC + struct.pack(">I", len(header)) + header + ciphertext
    return body + sender.sign.sign(body)


def pack_header(pack: bytes) -> Header:
    """The header of a pack (unverified: to find the sender's card)."""
    if not pack.startswith(PACK_MAGIC):
        raise TransferError("not a Vigil transfer pack")
    start = len(PACK_MAGIC)
    if len(pack) < start + 4 + SIGNATURE:
        raise TransferError("the pack is truncated")
    (length,) = struct.unpack(">I", pack[start : start + 4])
    if length > MAX_HEADER or start + 4 + length + SIGNATURE > len(pack):
        raise TransferError("the pack's header is damaged")
    return _header_of(pack[start + 4 : start + 4 + length])


def open_pack(pack: bytes, *, sender: Card, receiver: SchoolKeys) -> tuple[Header, bytes]:
    """Verify the signature with the (trusted) sender's card, check it is addressed to
    `receiver`, decrypt. TransferError with one line for anything wrong."""
    header = pack_header(pack)
    body, signature = pack[:-SIGNATURE], pack[-SIGNATURE:]
    try:
        Ed25519PublicKey.from_public_bytes(sender.sign_key).verify(signature, body)
    except InvalidSignature:
        raise TransferError(
            "the pack's signature does not verify: it was changed after it was made, or "
            f"was not made by {sender.name}"
        ) from None
    if header.sender != sender.fingerprint:
        raise TransferError("the pack's sender does not match the trusted card")
    if header.recipient != receiver.card.fingerprint:
        raise TransferError(
            f"the pack is addressed to {header.recipient_name} ({header.recipient}), "
            f"not to this school ({receiver.card.fingerprint})"
        )
    start = len(PACK_MAGIC)
    (length,) = struct.unpack(">I", pack[start : start + 4])
    raw_header = pack[start + 4 : start + 4 + length]
    try:
        plaintext = SUITE.decrypt(body[start + 4 + length :], receiver.receive, info=raw_header)
    except (InvalidTag, ValueError):
        raise TransferError("the pack does not decrypt with this school's key") from None
    return header, plaintext


def pack_digest(pack: bytes) -> str:
    return hashlib.sha256(pack).hexdigest()


@dataclass(frozen=True)
class Receipt:
    pack_id: str
    digest: str  # SHA-256 of the pack received
    sender: str  # the school that received the pack and signs the receipt
    sender_name: str
    recipient: str  # the school that sent the pack
    received_at: str


def sign_receipt(receipt: Receipt, *, keys: SchoolKeys) -> bytes:
    body = RECEIPT_MAGIC + _canonical(
        {
            "format": "vigil-transfer-receipt",
            "version": VERSION,
            "pack_id": receipt.pack_id,
            "pack_sha256": receipt.digest,
            "received_by": {"fingerprint": receipt.sender, "name": receipt.sender_name},
            "sent_by": receipt.recipient,
            "received_at": receipt.received_at,
        }
    )
    return body + b"\n" + _b64(keys.sign.sign(body)).encode("ascii") + b"\n"


def receipt_signer(data: bytes) -> str:
    """The fingerprint of the school a receipt says signed it (unverified)."""
    return _parse_receipt(data)[0].sender


def _parse_receipt(data: bytes) -> tuple[Receipt, bytes, bytes]:
    if not data.startswith(RECEIPT_MAGIC):
        raise TransferError("not a Vigil transfer receipt")
    try:
        body_line, signature_line = data[len(RECEIPT_MAGIC) :].rstrip(b"\n").split(b"\n")
        fields = json.loads(body_line)
        if fields["version"] != VERSION or fields["format"] != "vigil-transfer-receipt":
            raise TransferError("transfer receipt version is not supported")
        receipt = Receipt(
            str(fields["pack_id"]),
            str(fields["pack_sha256"]),
            str(fields["received_by"]["fingerprint"]),
            str(fields["received_by"]["name"]),
            str(fields["sent_by"]),
            str(fields["received_at"]),
        )
        signature = base64.b64decode(signature_line, validate=True)
    except (ValueError, KeyError, TypeError):
        raise TransferError("the receipt is damaged") from None
    return receipt, RECEIPT_MAGIC + body_line, signature


def open_receipt(data: bytes, *, signer: Card) -> Receipt:
    receipt, body, signature = _parse_receipt(data)
    try:
        Ed25519PublicKey.from_public_bytes(signer.sign_key).verify(signature, body)
    except InvalidSignature:
        raise TransferError("the receipt's signature does not verify") from None
    return receipt
