"""Record transfers, the steps a key-holder takes (`vigil transfer …` and the web view's
button): make the school's keys, trust another school's card, export a pupil's record as
a pack, import a pack (and make its receipt), import a receipt. Each writes its audit row
in the caller's transaction; a refusal raises `TransferError` (one line), so the caller's
transaction rolls back with nothing half-done, and the caller audits it with `refused`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, transfers, workspaces
from store.access import is_keyholder
from store.crypto import Cipher
from store.db import SessionFactory
from store.documents.storage import FileStore
from store.models import Staff, Transfer, TransferImport
from store.pupils import pupil_in_workspace
from store.transfer_format import (
    Card,
    Receipt,
    SchoolKeys,
    TransferError,
    open_pack,
    open_receipt,
    pack_digest,
    pack_header,
    receipt_signer,
    seal_pack,
    sign_receipt,
)

EXPORT = "transfer.export"
IMPORT = "transfer.import"
RECEIPT = "transfer.receipt"
TRUST = "transfer.trust"
KEYS = "transfer.keys"


def _keyholder(actor: Staff) -> None:
    if not (actor.active and is_keyholder(actor.role_set)):
        raise TransferError(f"{actor.email} is not an active key-holder")


async def _own_keys(session: AsyncSession, *, workspace_id: int, cipher: Cipher) -> SchoolKeys:
    keys = await transfers.school_keys(session, workspace_id=workspace_id, cipher=cipher)
    if keys is None:
        raise TransferError("this school has no transfer keys yet: run `vigil transfer keys`")
    return keys


def refused(
    session: AsyncSession, *, action: str, actor: Staff | None, workspace_id: int, reason: str
) -> None:
    """Audit a refused transfer step (in a transaction of its own: the step's rolled back)."""
    audit.record(
        session,
        action=action,
        outcome=audit.REFUSED,
        workspace_id=workspace_id,
        actor=actor,
        detail=reason[:200],
    )


async def make_keys(
    session: AsyncSession, *, workspace_id: int, name: str | None, cipher: Cipher
) -> tuple[Card, bool]:
    """This school's card (its keys made if there were none: named `name`, or the
    workspace's name), and whether they were made now."""
    school = name or await workspaces.school_name(session, workspace_id=workspace_id)
    if not school.strip():
        raise TransferError("give the school's name (--name)")
    keys, made = await transfers.make_keys(
        session, workspace_id=workspace_id, name=school, cipher=cipher
    )
    if made:
        audit.record(session, action=KEYS, workspace_id=workspace_id, detail=keys.card.fingerprint)
    return keys.card, made


async def trust_card(session: AsyncSession, *, workspace_id: int, card: Card) -> bool:
    """Trust another school's card; False if it was already trusted."""
    added = await transfers.trust(session, workspace_id=workspace_id, card=card)
    if added:
        audit.record(session, action=TRUST, workspace_id=workspace_id, detail=card.fingerprint)
    return added


@dataclass(frozen=True)
class Exported:
    pack: bytes
    pack_id: str
    filename: str
    concerns: int
    to: str


async def export_pack(
    session: AsyncSession,
    *,
    factory: SessionFactory,
    store: FileStore,
    cipher: Cipher,
    actor: Staff,
    pupil_id: int | None = None,
    upn: str | None = None,
    to: str,
    chronology_pdf: bytes | None,
    now: dt.datetime,
) -> Exported:
    """A key-holder's pack of a pupil's whole record for the school named `to` (a trusted
    card), recorded as an open transfer and audited (the pupil's id, the school)."""
    _keyholder(actor)
    workspace_id = actor.workspace_id
    keys = await _own_keys(session, workspace_id=workspace_id, cipher=cipher)
    card = await transfers.card_named(session, workspace_id=workspace_id, name=to)
    if card is None:
        raise TransferError(
            f"no trusted school card named {to!r}: import theirs with `vigil transfer trust CARD`"
        )
    if card.fingerprint == keys.card.fingerprint:
        raise TransferError("a pack cannot be addressed to this school itself")
    pupil = None
    if pupil_id is not None:
        pupil = await pupil_in_workspace(session, workspace_id=workspace_id, pupil_id=pupil_id)
    elif upn:
        pupil = await transfers.pupil_by_upn(
            session, workspace_id=workspace_id, cipher=cipher, upn=upn
        )
    if pupil is None:
        raise TransferError(f"no pupil {upn or pupil_id} at this school")
    plain, concerns = await transfers.gather(
        session,
        factory=factory,
        store=store,
        cipher=cipher,
        pupil=pupil,
        school=keys.name,
        chronology_pdf=chronology_pdf,
        at=now,
    )
    pack_id = uuid.uuid4().hex
    pack = seal_pack(plain, sender=keys, recipient=card, pack_id=pack_id, at=now)
    session.add(
        Transfer(
            workspace_id=workspace_id,
            pack_id=pack_id,
            pupil_id=pupil.id,
            to_fingerprint=card.fingerprint,
            to_name=card.name,
            digest=pack_digest(pack),
            created_by_id=actor.id,
            created_at=now,
        )
    )
    audit.record(
        session,
        action=EXPORT,
        actor=actor,
        now=now,
        detail=f"pupil {pupil.id} to {card.fingerprint}; pack {pack_id}; {concerns} concerns",
    )
    return Exported(pack, pack_id, f"transfer-{pack_id[:12]}.vigilpack", concerns, card.name)


@dataclass(frozen=True)
class ImportedPack:
    pack_id: str
    from_school: str
    pupil_id: int
    created_pupil: bool
    numbers: list[int]
    files: int
    receipt: bytes


async def import_pack(
    session: AsyncSession,
    *,
    store: FileStore,
    cipher: Cipher,
    actor: Staff,
    pack: bytes,
    now: dt.datetime,
) -> ImportedPack:
    """Verify (a trusted sender's signature, addressed here, not imported before),
    decrypt and import a pack, all in the caller's one transaction; and the signed
    receipt to send back. TransferError (nothing written) for anything wrong."""
    _keyholder(actor)
    workspace_id = actor.workspace_id
    keys = await _own_keys(session, workspace_id=workspace_id, cipher=cipher)
    header = pack_header(pack)
    sender = await transfers.card_by_fingerprint(
        session, workspace_id=workspace_id, fingerprint=header.sender
    )
    if sender is None:
        raise TransferError(
            f"the pack says it is from {header.sender_name} ({header.sender}), whose card "
            "this school does not trust: check with them, then `vigil transfer trust CARD`"
        )
    header, plain = open_pack(pack, sender=sender, receiver=keys)
    earlier = await session.scalar(
        select(TransferImport).where(
            TransferImport.workspace_id == workspace_id, TransferImport.pack_id == header.pack_id
        )
    )
    if earlier is not None:
        raise TransferError(
            f"pack {header.pack_id} was already imported on {earlier.imported_at:%Y-%m-%d}: "
            "not imported again"
        )
    imported = await transfers.import_record(
        session,
        store=store,
        cipher=cipher,
        importer=actor,
        plain=plain,
        from_school=sender.name,
        at=now,
    )
    session.add(
        TransferImport(
            workspace_id=workspace_id,
            pack_id=header.pack_id,
            from_fingerprint=sender.fingerprint,
            from_name=sender.name,
            pupil_id=imported.pupil_id,
            imported_by_id=actor.id,
            imported_at=now,
        )
    )
    audit.record(
        session,
        action=IMPORT,
        actor=actor,
        now=now,
        detail=f"pupil {imported.pupil_id} from {sender.fingerprint}; pack {header.pack_id}; "
        f"{len(imported.numbers)} concerns",
    )
    receipt = sign_receipt(
        Receipt(
            header.pack_id,
            pack_digest(pack),
            keys.card.fingerprint,
            keys.name,
            sender.fingerprint,
            now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        ),
        keys=keys,
    )
    return ImportedPack(
        header.pack_id,
        sender.name,
        imported.pupil_id,
        imported.created_pupil,
        imported.numbers,
        imported.files,
        receipt,
    )


async def import_receipt(
    session: AsyncSession, *, workspace_id: int, data: bytes, now: dt.datetime
) -> Transfer:
    """Close the transfer a receiving school's signed receipt names."""
    signer = await transfers.card_by_fingerprint(
        session, workspace_id=workspace_id, fingerprint=receipt_signer(data)
    )
    if signer is None:
        raise TransferError("the receipt is signed by a school this school does not trust")
    receipt = open_receipt(data, signer=signer)
    transfer = await transfers.open_transfer(session, pack_id=receipt.pack_id)
    if transfer is None or transfer.workspace_id != workspace_id:
        raise TransferError(f"no transfer with pack {receipt.pack_id} was sent from here")
    if transfer.to_fingerprint != signer.fingerprint or transfer.digest != receipt.digest:
        raise TransferError("the receipt is not for the pack this school sent to that school")
    if transfer.receipted_at is not None:
        raise TransferError(
            f"transfer T{transfer.id} was already receipted on {transfer.receipted_at:%Y-%m-%d}"
        )
    transfer.receipted_at = now
    audit.record(
        session,
        action=RECEIPT,
        workspace_id=workspace_id,
        now=now,
        detail=f"transfer {transfer.id}; pack {transfer.pack_id}; from {signer.fingerprint}",
    )
    return transfer
