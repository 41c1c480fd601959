"""What is stored encrypted, whether the configured keys read it, and key rotation.

Narratives, parents-not-contacted reasons, action texts, named adults, authenticator
secrets, social workers' names, paper-record descriptions, body-map marks, legal holds'
reasons, who asked for a subject access request and its redactions, file keys, Slack bot
tokens (OAuth mode), pupils' names, dates of birth and UPNs, and agencies' references are
stored encrypted (`store.crypto`, docs/record-encryption.md). A database that holds any of
them is tied to its keys: `vigil init --force` must not replace them, and a server started
with the wrong ones must say so at once rather than at the first page a DSL opens.

`rotate` is `vigil rotate-key`: it re-wraps every data key under the first key of
`VIGIL_DATA_KEY`, re-encrypts any value still in the legacy Fernet format (and file keys
wrapped before data keys) into the bound format, and each value of a concern or paper
record still sealed under a data key under its record's key (`store.keyring.record_key`,
so that destroying the record shreds it), in batches of short transactions, and says
whether an older key is still needed. The server keeps serving meanwhile: the data
keys themselves do not change, and a value reads the same before and after conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, keyring
from store.crypto import (
    Cipher,
    DecryptionError,
    bind,
    dek_aad,
    is_legacy,
    is_legacy_file_key,
    is_record_key,
    key_id_of,
)
from store.db import SessionFactory, transaction
from store.documents import files, sealing
from store.models import (
    BodyMap,
    DataKey,
    Incident,
    IncidentAction,
    IncidentAdult,
    PaperRecord,
    Pupil,
    PupilContext,
    PupilContextChange,
    Referral,
    RetentionHold,
    SarRedaction,
    SearchKey,
    SlackInstallation,
    StoredFile,
    SubjectAccessRequest,
    TotpEnrolment,
    TransferKeys,
    utcnow,
)

# Every column sealed with `Cipher.encrypt`, bound to its row (files' keys apart).
ENCRYPTED_COLUMNS: tuple[Any, ...] = (
    Incident.narrative_ct,
    Incident.parents_reason_ct,
    IncidentAdult.name_ct,
    IncidentAction.text_ct,
    TotpEnrolment.secret_ct,
    PupilContext.social_worker_ct,
    PupilContextChange.value_ct,
    PaperRecord.description_ct,
    BodyMap.marks_ct,
    TransferKeys.receive_ct,
    TransferKeys.sign_ct,
    SearchKey.key_ct,
    RetentionHold.reason_ct,
    SlackInstallation.bot_token_ct,
    SubjectAccessRequest.requester_ct,
    SarRedaction.phrase_ct,
    Pupil.details_ct,
    Referral.reference_ct,
)
BATCH = 200


def primary_key(column: Any) -> Any:
    """The (single) primary key attribute of a column's table."""
    (key,) = column.class_.__mapper__.primary_key
    return getattr(column.class_, key.key)


async def sample(session: AsyncSession) -> bytes | None:
    """One stored ciphertext (of the first kind found), or None if none is."""
    for column in ENCRYPTED_COLUMNS:
        found = await session.scalar(select(column).where(column.is_not(None)).limit(1))
        if found is not None:
            return bytes(found)
    return None


async def holds_encrypted_data(session: AsyncSession) -> bool:
    """True when anything in the database is encrypted with the data key (a value, or a
    data key wrapped by it; a database not yet upgraded to data keys has values only)."""
    if await sample(session) is not None:
        return True
    try:
        async with session.begin_nested():
            return bool(await session.scalar(select(DataKey.id).limit(1)))
    except (OperationalError, ProgrammingError):  # no data_keys table yet
        return False


async def key_reads_stored_data(session: AsyncSession, *, cipher: Cipher) -> bool:
    """True when `cipher`'s keys read what is stored (or nothing is stored yet).

    Loads the data keys into `cipher` (creating the first on a new database, once what is
    stored is known to read): raises `keyring.KeyUnavailable` naming a data key that no
    configured key unwraps, or values in the legacy format none decrypts while the data
    keys do unwrap (an older key removed before `vigil rotate-key` converted them).
    """
    await keyring.load_data_keys(session, cipher, create=False)
    for column in ENCRYPTED_COLUMNS:
        pk = primary_key(column)
        rows = (
            await session.execute(select(pk, column).where(column.is_not(None)).limit(20))
        ).all()
        legacy = [token for _id, token in rows if is_legacy(bytes(token))]
        if legacy:
            try:
                cipher.decrypt_legacy(bytes(legacy[0]))
            except DecryptionError:
                if cipher.current is None:
                    return False  # nothing converted yet: simply the wrong key
                raise keyring.KeyUnavailable(
                    f"{column.class_.__tablename__}.{column.key} still holds values written "
                    "before data keys, which only an older key decrypts, and VIGIL_DATA_KEY "
                    "no longer has it: put the old key back after the new one "
                    "(VIGIL_DATA_KEY=new,old), run `vigil rotate-key`, and remove it only "
                    "when it says the old key is no longer used"
                ) from None
    new_database = cipher.current is None and not await holds_encrypted_data(session)
    await keyring.ensure_data_key(session, cipher)
    if new_database:
        await keyring.close_legacy(session, cipher)  # nothing legacy can ever belong here
    return True


@dataclass
class Rotation:
    """What `vigil rotate-key` did, and what is still needed."""

    rewrapped: int = 0
    converted: int = 0
    files_rewrapped: int = 0
    old_keks_in_use: int = 0  # data keys still wrapped by a KEK other than the first
    legacy_left: int = 0  # values still in the legacy format (need the old keys)

    @property
    def old_key_needed(self) -> bool:
        return bool(self.old_keks_in_use or self.legacy_left)


async def rewrap_data_keys(session: AsyncSession, cipher: Cipher) -> int:
    """Re-wrap every data key not wrapped by the first KEK; how many were."""
    await keyring.load_data_keys(session, cipher)
    first = cipher.keks[0]
    done = 0
    for row in (await session.scalars(select(DataKey).where(DataKey.kek_id != first.key_id))).all():
        key = keyring.unwrap(cipher, row)
        if key is None:  # load_data_keys raised already; kept for clarity
            continue
        row.wrapped = first.wrap(key, dek_aad(row.id))
        row.kek_id = first.key_id
        row.rewrapped_at = utcnow()
        done += 1
    return done


def _needs_converting(token: bytes, owned: bool) -> bool:
    """Legacy, or (a value of a record) sealed under a data key, not its record's key."""
    if is_legacy(token):
        return True
    key_id = key_id_of(token)
    return owned and key_id is not None and not is_record_key(key_id)


async def _convert_column(
    factory: SessionFactory, cipher: Cipher, column: Any, progress: Callable[[str], None]
) -> int:
    """Re-seal the column's legacy values in the bound format, and a record's values
    sealed under a data key under its record's key (made if it has none)."""
    pk = primary_key(column)
    table = column.class_.__table__
    owners = keyring.RECORD_OWNED.get(column.class_)
    owner_columns = [c if c is not None else literal(None) for c in owners or (None, None)]
    after: Any = None
    converted = 0
    while True:
        async with transaction(factory) as session:
            query = (
                select(pk, column, *owner_columns)
                .where(column.is_not(None))
                .order_by(pk)
                .limit(BATCH)
            )
            if after is not None:
                query = query.where(pk > after)
            rows = (await session.execute(query)).all()
            if not rows:
                return converted
            after = rows[-1][0]
            for row_id, token, incident_id, paper_record_id in rows:
                if not _needs_converting(bytes(token), owners is not None):
                    continue
                key_id = None
                if incident_id is not None or paper_record_id is not None:
                    key_id = await keyring.record_key(
                        session, cipher, incident_id=incident_id, paper_record_id=paper_record_id
                    )
                where = bind(column, row_id)
                text = (
                    cipher.decrypt_legacy(bytes(token))
                    if is_legacy(bytes(token))
                    else cipher.decrypt(token, where)
                )
                sealed = cipher.encrypt(text, where, key_id=key_id)
                await session.execute(
                    update(table)
                    .where(table.c[pk.key] == row_id)
                    .values({column.key: sealed})
                    .execution_options(synchronize_session=False)
                )
                converted += 1
        progress(f"{column.class_.__tablename__}.{column.key}: {converted} converted so far")


async def _rewrap_files(factory: SessionFactory, cipher: Cipher) -> int:
    after = 0
    done = 0
    while True:
        async with transaction(factory) as session:
            rows = (
                await session.scalars(
                    select(StoredFile)
                    .where(StoredFile.id > after)
                    .order_by(StoredFile.id)
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                return done
            after = rows[-1].id
            for row in rows:
                wrapped = bytes(row.key_ct)
                if not is_legacy_file_key(wrapped) and is_record_key(key_id_of(wrapped) or 0):
                    continue
                binding = files.binding(row)
                key = sealing.unwrap_key(cipher, row.key_ct, binding=binding)
                key_id = await keyring.record_key(
                    session,
                    cipher,
                    incident_id=row.incident_id,
                    paper_record_id=row.paper_record_id,
                )
                await session.execute(
                    update(StoredFile)
                    .where(StoredFile.id == row.id)
                    .values(key_ct=sealing.wrap_key(cipher, key, binding=binding, key_id=key_id))
                    .execution_options(synchronize_session=False)
                )
                done += 1


async def status(session: AsyncSession, cipher: Cipher) -> Rotation:
    """How many data keys and values still need a key other than the first."""
    result = Rotation()
    first = cipher.keks[0].key_id
    result.old_keks_in_use = len(
        (await session.scalars(select(DataKey.id).where(DataKey.kek_id != first))).all()
    )
    for column in ENCRYPTED_COLUMNS:
        for (token,) in (await session.execute(select(column).where(column.is_not(None)))).all():
            result.legacy_left += is_legacy(bytes(token))
    for (token,) in (await session.execute(select(StoredFile.key_ct))).all():
        result.legacy_left += is_legacy_file_key(bytes(token))
    return result


async def rotate(
    factory: SessionFactory, cipher: Cipher, *, progress: Callable[[str], None] = print
) -> Rotation:
    """`vigil rotate-key`: re-wrap the data keys, convert legacy values, report."""
    async with transaction(factory) as session:
        rewrapped = await rewrap_data_keys(session, cipher)
        audit.record(session, action="keys.rewrap", detail=f"{rewrapped} data keys re-wrapped")
    progress(f"data keys re-wrapped under the first key: {rewrapped}")
    converted = 0
    for column in ENCRYPTED_COLUMNS:
        converted += await _convert_column(factory, cipher, column, progress)
    files_done = await _rewrap_files(factory, cipher)
    async with transaction(factory) as session:
        audit.record(
            session,
            action="keys.convert",
            detail=f"{converted} values and {files_done} file keys converted",
        )
        result = await status(session, cipher)
        if not result.legacy_left:
            await keyring.close_legacy(session, cipher)
    result.rewrapped, result.converted, result.files_rewrapped = rewrapped, converted, files_done
    return result
