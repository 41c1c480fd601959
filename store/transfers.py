"""Record transfers between schools (DESIGN §14): this school's keys and the cards it
trusts, a pupil's whole record gathered into a pack's plaintext and imported from one,
the transfers sent (closed by a receipt) and the nudge when one is not receipted.

The pack's format and its cryptography are `store.transfer_format`; the steps people
take (export, import, receipt), each one transaction with its audit row, are
`store.flows.transfers`. Private keys are stored only encrypted with the data key.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import (
    incidents,
    keyring,
    messages,
    outbox,
    pupil_context,
    pupil_corrections,
    pupils,
)
from store.crypto import Cipher, bind
from store.db import SessionFactory
from store.documents import bodymap
from store.documents.files import open_file, plaintext, store_file
from store.documents.intake import Intake
from store.documents.storage import FileStore
from store.models import (
    CaseStatusChange,
    Incident,
    IncidentAction,
    IncidentAdult,
    IncidentAgency,
    IncidentCategory,
    IncidentPupil,
    PaperRecord,
    Pupil,
    PupilContext,
    PupilDetails,
    Referral,
    Staff,
    StoredFile,
    Transfer,
    TransferCard,
    TransferKeys,
)
from store.school_config import SchoolConfig
from store.staff import nudge_recipients
from store.transfer_format import Card, SchoolKeys, TransferError
from store.workspaces import in_school

log = structlog.get_logger(__name__)

RECORD_VERSION = 1
RECEIPT_WORKING_DAYS = 5
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024
NUDGE_BATCH = 100


# -- keys and cards ------------------------------------------------------------------


async def school_keys(
    session: AsyncSession, *, workspace_id: int, cipher: Cipher
) -> SchoolKeys | None:
    """This school's transfer keys, decrypted (None: not made yet)."""
    await keyring.ensure_data_key(session, cipher)  # also from the command line
    row = await session.get(TransferKeys, workspace_id)
    if row is None:
        return None
    return SchoolKeys.from_raw(
        row.name,
        base64.b64decode(
            cipher.decrypt(row.receive_ct, bind(TransferKeys.receive_ct, row.workspace_id))
        ),
        base64.b64decode(cipher.decrypt(row.sign_ct, bind(TransferKeys.sign_ct, row.workspace_id))),
    )


async def make_keys(
    session: AsyncSession, *, workspace_id: int, name: str, cipher: Cipher
) -> tuple[SchoolKeys, bool]:
    """This school's keys, made (with its name on its card) if it has none; and whether
    they were made now. Existing keys are kept: packs in flight are encrypted to them."""
    existing = await school_keys(session, workspace_id=workspace_id, cipher=cipher)
    if existing is not None:
        return existing, False
    keys = SchoolKeys.generate(name.strip())
    receive, sign = keys.raw()
    row = TransferKeys(workspace_id=workspace_id, name=keys.name)
    await keyring.seal(
        session,
        cipher,
        row,
        {
            TransferKeys.receive_ct: base64.b64encode(receive).decode("ascii"),
            TransferKeys.sign_ct: base64.b64encode(sign).decode("ascii"),
        },
    )
    session.add(row)  # its key is the workspace's id: sealed before it is added
    await session.flush()
    return keys, True


def _card(row: TransferCard) -> Card:
    return Card(row.name, bytes(row.receive_key), bytes(row.sign_key))


async def trust(session: AsyncSession, *, workspace_id: int, card: Card) -> bool:
    """Trust another school's card (packs to it, packs and receipts from it); False if
    it was trusted already. A different card with the same name is refused."""
    rows = list(
        await session.scalars(select(TransferCard).where(TransferCard.workspace_id == workspace_id))
    )
    if any(r.fingerprint == card.fingerprint for r in rows):
        return False
    if any(r.name.casefold() == card.name.casefold() for r in rows):
        raise TransferError(
            f"a different card named {card.name!r} is already trusted: check with that "
            "school which card is theirs"
        )
    session.add(
        TransferCard(
            workspace_id=workspace_id,
            fingerprint=card.fingerprint,
            name=card.name,
            receive_key=card.receive_key,
            sign_key=card.sign_key,
        )
    )
    await session.flush()
    return True


async def trusted_cards(session: AsyncSession, *, workspace_id: int) -> list[Card]:
    rows = await session.scalars(
        select(TransferCard)
        .where(TransferCard.workspace_id == workspace_id)
        .order_by(TransferCard.name)
    )
    return [_card(r) for r in rows]


async def card_named(session: AsyncSession, *, workspace_id: int, name: str) -> Card | None:
    """The trusted card with this school name (case and spacing aside)."""
    wanted = " ".join(name.split()).casefold()
    for card in await trusted_cards(session, workspace_id=workspace_id):
        if " ".join(card.name.split()).casefold() == wanted:
            return card
    return None


async def card_by_fingerprint(
    session: AsyncSession, *, workspace_id: int, fingerprint: str
) -> Card | None:
    row = await session.scalar(
        select(TransferCard).where(
            TransferCard.workspace_id == workspace_id, TransferCard.fingerprint == fingerprint
        )
    )
    return _card(row) if row is not None else None


# -- the record, gathered ------------------------------------------------------------


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _file_member(
    factory: SessionFactory,
    *,
    store: FileStore,
    cipher: Cipher,
    row: StoredFile,
    archive: zipfile.ZipFile,
) -> dict[str, Any]:
    opened = open_file(cipher, row)
    content = b"".join([p async for p in plaintext(factory, configured=store, opened=opened)])
    member = f"files/{row.token}"
    archive.writestr(member, content)
    return {
        "name": opened.name,
        "kind": row.kind,
        "member": member,
        "uploaded_by": row.uploaded_by.name,
        "created_at": _iso(row.created_at),
    }


async def gather(
    session: AsyncSession,
    *,
    factory: SessionFactory,
    store: FileStore,
    cipher: Cipher,
    pupil: Pupil,
    school: str,
    chronology_pdf: bytes | None,
    at: dt.datetime,
) -> tuple[bytes, int]:
    """The pack's plaintext (a zip: `record.json`, `files/…`, `chronology.pdf`) holding
    the pupil's whole record; and how many concerns it holds. Allegations about adults
    are not part of a pupil's record and are left out; other pupils are counted, never
    named."""
    await keyring.load_record_keys(session, cipher)  # those made since (by other processes)
    buffer = io.BytesIO()
    context = (
        await pupil_context.contexts(
            session, workspace_id=pupil.workspace_id, pupil_ids=[pupil.id], cipher=cipher
        )
    )[pupil.id]
    naming = pupil_corrections.naming([pupil.id])
    rows = list(
        await session.execute(
            select(Incident, naming.c.is_main)
            .join(naming, naming.c.incident_id == Incident.id)
            .where(
                Incident.workspace_id == pupil.workspace_id,
                ~select(IncidentAdult.incident_id)
                .where(IncidentAdult.incident_id == Incident.id)
                .exists(),
            )
            .order_by(Incident.happened_at, Incident.id)
        )
    )
    concerns: list[dict[str, Any]] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for incident, is_main in rows:
            concerns.append(
                await _concern(
                    session,
                    factory=factory,
                    store=store,
                    cipher=cipher,
                    incident=incident,
                    is_main=bool(is_main),
                    archive=archive,
                )
            )
        papers = []
        for record in await session.scalars(
            select(PaperRecord)
            .where(PaperRecord.pupil_id == pupil.id)
            .order_by(PaperRecord.recorded_on, PaperRecord.id)
        ):
            files = await session.scalars(
                select(StoredFile)
                .where(StoredFile.paper_record_id == record.id)
                .order_by(StoredFile.id)
            )
            papers.append(
                {
                    "recorded_on": _iso(record.recorded_on),
                    "description": cipher.decrypt(
                        record.description_ct, bind(PaperRecord.description_ct, record.id)
                    ),
                    "added_by": record.added_by.name,
                    "files": [
                        await _file_member(
                            factory, store=store, cipher=cipher, row=f, archive=archive
                        )
                        for f in files
                    ],
                }
            )
        if chronology_pdf is not None:
            archive.writestr("chronology.pdf", chronology_pdf)
        record_json = {
            "record_version": RECORD_VERSION,
            "from_school": school,
            "made_at": _iso(at),
            "pupil": {
                "upn": pupil.upn,
                "forename": pupil.forename,
                "surname": pupil.surname,
                "preferred_name": pupil.preferred_name,
                "date_of_birth": _iso(pupil.date_of_birth),
                "year_group": pupil.year_group,
                "registration_group": pupil.registration_group,
                "left_on": _iso(pupil.left_on),
            },
            "context": asdict(context),
            "concerns": concerns,
            "paper_records": papers,
            "chronology_pdf": chronology_pdf is not None,
        }
        archive.writestr("record.json", json.dumps(record_json, ensure_ascii=False, indent=1))
    return buffer.getvalue(), len(concerns)


async def _concern(
    session: AsyncSession,
    *,
    factory: SessionFactory,
    store: FileStore,
    cipher: Cipher,
    incident: Incident,
    is_main: bool,
    archive: zipfile.ZipFile,
) -> dict[str, Any]:
    actions = list(
        await session.scalars(
            select(IncidentAction)
            .where(IncidentAction.incident_id == incident.id)
            .order_by(IncidentAction.created_at, IncidentAction.id)
        )
    )
    referrals = list(
        await session.scalars(
            select(Referral).where(Referral.incident_id == incident.id).order_by(Referral.id)
        )
    )
    statuses = list(
        await session.scalars(
            select(CaseStatusChange)
            .where(CaseStatusChange.incident_id == incident.id)
            .order_by(CaseStatusChange.id)
        )
    )
    maps = list(await bodymap.body_maps_of(session, incident_id=incident.id, cipher=cipher))
    files = list(
        await session.scalars(
            select(StoredFile)
            .where(StoredFile.incident_id == incident.id)
            .order_by(StoredFile.created_at, StoredFile.id)
        )
    )
    named = await pupil_corrections.pupils_of(session, incident=incident)
    return {
        "number": incident.number,
        "happened_at": _iso(incident.happened_at),
        "created_at": _iso(incident.created_at),
        "author": incident.author.name,
        "narrative": cipher.decrypt(
            incident.narrative_ct, bind(Incident.narrative_ct, incident.id)
        ),
        "parents_contacted": incident.parents_contacted,
        "parents_reason": (
            cipher.decrypt(
                incident.parents_reason_ct, bind(Incident.parents_reason_ct, incident.id)
            )
            if incident.parents_reason_ct
            else None
        ),
        "categories": [{"name": c.name, "restricted": c.restricted} for c in incident.categories],
        "agencies": [a.name for a in incident.agencies],
        "main": is_main,
        "other_pupils": len(named) - 1,
        "actions": [
            {
                "created_at": _iso(a.created_at),
                "author": a.author.name,
                "text": cipher.decrypt(a.text_ct, bind(IncidentAction.text_ct, a.id)),
                "categories": a.categories,
            }
            for a in actions
        ],
        "referrals": [
            {
                "agency": r.agency,
                "reference": r.reference,
                "referred_at": _iso(r.referred_at),
                "status": r.status,
                "responded_at": _iso(r.responded_at),
                "closed_at": _iso(r.closed_at),
            }
            for r in referrals
        ],
        "status_changes": [
            {"created_at": _iso(s.created_at), "status": s.status, "outcome": s.outcome}
            for s in statuses
        ],
        "body_maps": [
            {
                "created_at": _iso(m.created_at),
                "author": m.author,
                "marks": [asdict(mark) for mark in m.marks],
            }
            for m in maps
        ],
        "files": [
            await _file_member(factory, store=store, cipher=cipher, row=f, archive=archive)
            for f in files
        ],
    }


# -- the record, imported ------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    pupil_id: int
    created_pupil: bool
    numbers: list[int]
    files: int


def _when(text: str | None) -> str:
    if not text:
        return "an unknown date"
    return text[:10]


def _read_zip(plain: bytes) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(plain))
        record = json.loads(archive.read("record.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise TransferError("the pack decrypted but its record is damaged") from None
    if not isinstance(record, dict) or record.get("record_version") != RECORD_VERSION:
        raise TransferError("the pack's record version is not supported")
    return archive, record


async def _reseal(
    session: AsyncSession,
    *,
    store: FileStore,
    cipher: Cipher,
    archive: zipfile.ZipFile,
    entry: dict[str, Any],
    importer: Staff,
    incident_id: int | None = None,
    paper_record_id: int | None = None,
) -> None:
    intake = Intake(store, max_bytes=MAX_FILE_BYTES)
    try:
        intake.feed(archive.read(str(entry["member"])))
        sealed = intake.finish()
    except KeyError:
        intake.discard()
        raise TransferError("the pack's record names a file it does not hold") from None
    await store_file(
        session,
        cipher=cipher,
        store=store,
        sealed=sealed,
        name=str(entry["name"])[:255],
        uploader=importer,
        incident_id=incident_id,
        paper_record_id=paper_record_id,
    )


async def import_record(
    session: AsyncSession,
    *,
    store: FileStore,
    cipher: Cipher,
    importer: Staff,
    plain: bytes,
    from_school: str,
    at: dt.datetime,
) -> Imported:
    """Write the pack's record here (in the caller's one transaction): the pupil matched
    by UPN or created, each concern a new concern marked "transferred from", its actions,
    referrals and status changes as notes, its body maps and files re-sealed here."""
    archive, record = _read_zip(plain)
    try:
        return await _import(
            session,
            store=store,
            cipher=cipher,
            importer=importer,
            archive=archive,
            record=record,
            from_school=from_school,
            at=at,
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, TransferError):
            raise
        raise TransferError("the pack decrypted but its record is damaged") from None


async def _import(
    session: AsyncSession,
    *,
    store: FileStore,
    cipher: Cipher,
    importer: Staff,
    archive: zipfile.ZipFile,
    record: dict[str, Any],
    from_school: str,
    at: dt.datetime,
) -> Imported:
    workspace_id = importer.workspace_id
    sent = record["pupil"]
    pupil = await pupils.by_upn(
        session, workspace_id=workspace_id, cipher=cipher, upn=str(sent["upn"])
    )
    created = pupil is None
    if pupil is None:
        pupil = await pupils.new_pupil(
            session,
            cipher=cipher,
            workspace_id=workspace_id,
            details=PupilDetails(
                upn=pupils.normal_upn(str(sent["upn"]))[:13],
                forename=str(sent["forename"])[:100],
                surname=str(sent["surname"])[:100],
                preferred_name=sent.get("preferred_name"),
                date_of_birth=dt.date.fromisoformat(sent["date_of_birth"]),
            ),
            year_group=str(sent["year_group"])[:20],
            registration_group=str(sent["registration_group"])[:50],
        )
    context_row = await session.get(PupilContext, pupil.id)
    old = pupil_context.stored(context_row, cipher)
    new = pupil_context.merged(old, record["context"])
    await pupil_context.set_context(
        session,
        workspace_id=workspace_id,
        pupil_id=pupil.id,
        row=context_row,
        old=old,
        new=new,
        cipher=cipher,
        source="transfer",
        at=at,
        actor_id=importer.id,
    )
    numbers: list[int] = []
    files = 0
    for concern in record["concerns"]:
        number, count = await _import_concern(
            session,
            store=store,
            cipher=cipher,
            importer=importer,
            archive=archive,
            concern=concern,
            pupil=pupil,
            from_school=from_school,
            at=at,
        )
        numbers.append(number)
        files += count
    papers = list(record["paper_records"])
    if record.get("chronology_pdf"):
        papers.append(
            {
                "recorded_on": at.date().isoformat(),
                "description": f"Chronology as printed by {from_school} for the transfer",
                "added_by": from_school,
                "files": [{"name": "chronology.pdf", "member": "chronology.pdf"}],
            }
        )
    for paper in papers:
        row = PaperRecord(
            workspace_id=workspace_id,
            pupil_id=pupil.id,
            recorded_on=dt.date.fromisoformat(paper["recorded_on"]),
            added_by_id=importer.id,
            created_at=at,
        )
        await keyring.seal(
            session,
            cipher,
            row,
            {
                PaperRecord.description_ct: f"{paper['description']}\n\n(Transferred from "
                f"{from_school}; added there by {paper['added_by']}.)"
            },
        )
        await session.flush()
        for entry in paper["files"]:
            await _reseal(
                session,
                store=store,
                cipher=cipher,
                archive=archive,
                entry=entry,
                importer=importer,
                paper_record_id=row.id,
            )
            files += 1
    return Imported(pupil.id, created, numbers, files)


async def _import_concern(
    session: AsyncSession,
    *,
    store: FileStore,
    cipher: Cipher,
    importer: Staff,
    archive: zipfile.ZipFile,
    concern: dict[str, Any],
    pupil: Pupil,
    from_school: str,
    at: dt.datetime,
) -> tuple[int, int]:
    workspace_id = importer.workspace_id
    others = int(concern.get("other_pupils", 0))
    note = (
        f"Transferred from {from_school}: their concern #{concern['number']}, recorded "
        f"{_when(concern['created_at'])} by {concern['author']}"
        + (f"; it also named {others} other pupil{'s' if others != 1 else ''}" if others else "")
        + ".\n\n"
    )
    incident = Incident(
        workspace_id=workspace_id,
        number=await incidents.next_number(session, workspace_id=workspace_id),
        author_id=importer.id,
        happened_at=dt.datetime.fromisoformat(concern["happened_at"]),
        created_at=at,
        parents_contacted=str(concern["parents_contacted"])[:10],
    )
    await keyring.seal(
        session,
        cipher,
        incident,
        {
            Incident.narrative_ct: note + concern["narrative"],
            Incident.parents_reason_ct: concern.get("parents_reason") or None,
        },
    )
    await session.flush()
    session.add(IncidentPupil(incident_id=incident.id, pupil_id=pupil.id, position=0, is_main=True))
    for position, category in enumerate(concern["categories"]):
        session.add(
            IncidentCategory(
                incident_id=incident.id,
                name=str(category["name"])[:100],
                restricted=bool(category["restricted"]),
                position=position,
            )
        )
    for position, agency in enumerate(concern["agencies"]):
        session.add(
            IncidentAgency(incident_id=incident.id, name=str(agency)[:100], position=position)
        )
    notes: list[tuple[str, str, list[str] | None]] = []
    for action in concern["actions"]:
        notes.append(
            (
                action["created_at"],
                f"[{from_school}, {_when(action['created_at'])}, {action['author']}] "
                + action["text"],
                action.get("categories"),
            )
        )
    for referral in concern["referrals"]:
        reference = f", reference {referral['reference']}" if referral.get("reference") else ""
        notes.append(
            (
                referral["referred_at"],
                f"[{from_school}] Referred to {referral['agency']} on "
                f"{_when(referral['referred_at'])}{reference}; {referral['status']}"
                + (
                    f", responded {_when(referral['responded_at'])}"
                    if referral["responded_at"]
                    else ""
                )
                + (f", closed {_when(referral['closed_at'])}" if referral["closed_at"] else "")
                + ".",
                None,
            )
        )
    for change in concern["status_changes"]:
        outcome = f" ({change['outcome']})" if change.get("outcome") else ""
        notes.append(
            (
                change["created_at"],
                f"[{from_school}] Status set to {change['status']}{outcome} on "
                f"{_when(change['created_at'])}.",
                None,
            )
        )
    for bodymap_sent in concern["body_maps"]:
        await bodymap.add(
            session,
            cipher=cipher,
            incident_id=incident.id,
            workspace_id=workspace_id,
            author_id=importer.id,
            marks=[bodymap.Mark(**mark) for mark in bodymap_sent["marks"]],
        )
        notes.append(
            (
                bodymap_sent["created_at"],
                f"[{from_school}] Body map recorded {_when(bodymap_sent['created_at'])} by "
                f"{bodymap_sent['author']}.",
                None,
            )
        )
    for _, text, categories in sorted(notes, key=lambda n: n[0] or ""):
        action = IncidentAction(
            workspace_id=workspace_id,
            incident_id=incident.id,
            author_id=importer.id,
            created_at=at,
            categories=categories,
        )
        await keyring.seal(session, cipher, action, {IncidentAction.text_ct: text})
    for entry in concern["files"]:
        await _reseal(
            session,
            store=store,
            cipher=cipher,
            archive=archive,
            entry=entry,
            importer=importer,
            incident_id=incident.id,
        )
    await session.flush()
    return incident.number, len(concern["files"])


# -- transfers sent, and the receipt nudge -------------------------------------------


async def open_transfer(session: AsyncSession, *, pack_id: str) -> Transfer | None:
    return await session.scalar(select(Transfer).where(Transfer.pack_id == pack_id))


async def nudge_unreceipted(
    session: AsyncSession,
    *,
    config: SchoolConfig,
    public_url: str,
    now: dt.datetime,
    limit: int = NUDGE_BATCH,
    workspace_id: int | None = None,
) -> int:
    """Tell the DSLs, once, of each transfer not receipted after five school days (in
    working time only). The message names the receiving school and the delay, never the
    pupil. Returns how many transfers were nudged."""
    working = config.working_time
    if not working.is_working_time(now):
        return 0
    waiting: Sequence[Transfer] = (
        await session.scalars(
            select(Transfer)
            .where(
                Transfer.receipted_at.is_(None),
                Transfer.nudged_at.is_(None),
                Transfer.created_at <= now - dt.timedelta(days=RECEIPT_WORKING_DAYS),
                *in_school(Transfer.workspace_id, workspace_id),
            )
            .order_by(Transfer.created_at, Transfer.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    nudged = 0
    for transfer in waiting:
        if working.add_working_days(transfer.created_at, RECEIPT_WORKING_DAYS) > now:
            continue
        transfer.nudged_at = now
        nudged += 1
        payload = messages.transfer_unreceipted(
            transfer_id=transfer.id, school=transfer.to_name, school_days=RECEIPT_WORKING_DAYS
        )
        people = await nudge_recipients(session, workspace_id=transfer.workspace_id, escalate=False)
        outbox.dm_each(
            session, workspace_id=transfer.workspace_id, people=people, payload=payload, now=now
        )
    await session.flush()
    if nudged:
        log.info("transfer.unreceipted_nudged", transfers=nudged)
    return nudged


async def pupil_by_upn(
    session: AsyncSession, *, workspace_id: int, cipher: Cipher, upn: str
) -> Pupil | None:
    return await pupils.by_upn(session, workspace_id=workspace_id, cipher=cipher, upn=upn)
