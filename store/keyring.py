"""The data keys of the envelope encryption (`store.crypto`), and sealing a row's values.

`load_data_keys` unwraps every stored data key with the configured key-encryption keys
(creating the first data key on a new database), then every record key; a data key that
no configured KEK unwraps is a `KeyUnavailable` error naming it, raised at start-up.
`seal` encrypts values into a row, bound to its table, column and id (flushing a new row
first, for its id), under its record's key when the row belongs to a concern or a paper
record (`record_of`, `record_key`). `load_record_keys` loads the record keys other
processes made since; `destroy_record_key` is the crypto-shredding of a record.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

import structlog
from sqlalchemy import delete, func, inspect, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from store import bulk
from store.crypto import (
    RECORD_KEY_BIT,
    Cipher,
    IntegrityError,
    KeyEncryptionKey,
    MissingKeyError,
    bind,
    dek_aad,
    record_key_aad,
)
from store.models import (
    BodyMap,
    DataKey,
    EncryptionState,
    Incident,
    IncidentAction,
    IncidentAdult,
    PaperRecord,
    RecordKey,
    Referral,
    RetentionHold,
    utcnow,
)

log = structlog.get_logger(__name__)

# A record key made by another process is found by `load_record_keys` when it was created
# (by that process's clock) after this cipher's last load, less this margin (clock skew,
# and a transaction that commits a while after making its key); any other, by its id.
RELOAD_MARGIN = dt.timedelta(minutes=10)


class KeyUnavailable(Exception):
    """A stored data key is wrapped by a key-encryption key that is not configured."""


def unwrap(cipher: Cipher, row: Any) -> bytes | None:
    """The data key of `row` (id, kek_id, wrapped), unwrapped by a configured KEK (its own
    first), or None."""
    keks: list[KeyEncryptionKey] = sorted(cipher.keks, key=lambda k: k.key_id != row.kek_id)
    for kek in keks:
        try:
            return kek.unwrap(bytes(row.wrapped), dek_aad(row.id))
        except MissingKeyError:
            continue
    return None


async def load_data_keys(
    session: AsyncSession | AsyncConnection,
    cipher: Cipher,
    *,
    create: bool = True,
    records: bool = True,
) -> None:
    """Load every data key into `cipher`; the newest is used for new values (a new
    database gets its first, when `session` is a session and `create` is true); then,
    unless `records` is false (a process that never reads a record), every record key."""
    query = select(DataKey.id, DataKey.kek_id, DataKey.wrapped).order_by(
        DataKey.created_at, DataKey.id
    )
    rows = (await session.execute(query)).all()
    closed = await session.execute(select(EncryptionState.legacy_closed_at))
    cipher.accept_legacy = closed.scalar() is None
    missing = []
    for row in rows:
        if cipher.has_data_key(row.id):
            continue
        key = unwrap(cipher, row)
        if key is None:
            missing.append(row)
            continue
        cipher.add_data_key(row.id, key, current=True)
    if missing and len(missing) == len(rows):
        raise KeyUnavailable(
            "VIGIL_DATA_KEY cannot decrypt the records already in the database: none of its "
            "keys unwraps the data keys (wrapped by "
            + ", ".join(sorted({row.kek_id for row in rows}))
            + "). Restore the key kept when Vigil was set up; if you are rotating keys, put "
            "the old key back after the new one (VIGIL_DATA_KEY=new,old), run "
            "`vigil rotate-key`, and remove the old key only when it says it is no longer used"
        )
    if missing:
        names = ", ".join(f"data key {row.id} (wrapped by {row.kek_id})" for row in missing)
        raise KeyUnavailable(
            f"VIGIL_DATA_KEY does not unwrap {names}: the key that wrapped it is not "
            "configured. If a key was removed before `vigil rotate-key` finished, put it "
            "back after the new one (VIGIL_DATA_KEY=new,old), run `vigil rotate-key`, and "
            "remove it only when it says the old key is no longer used"
        )
    if rows:
        cipher.current = rows[-1].id
        if records:
            await load_record_keys(session, cipher)
    elif create and isinstance(session, AsyncSession):
        if session.get_bind().dialect.name == "postgresql":
            # Two servers starting at once on a new database must not each make a first
            # data key the other never loads: the second waits here, then finds the first's.
            await session.execute(text("LOCK TABLE data_keys IN SHARE ROW EXCLUSIVE MODE"))
            if await session.scalar(select(DataKey.id).limit(1)) is not None:
                await load_data_keys(session, cipher, create=False)
                return
        await new_data_key(session, cipher)


async def new_data_key(session: AsyncSession, cipher: Cipher) -> DataKey:
    """A fresh random data key, wrapped by the first KEK, made the current one."""
    key = secrets.token_bytes(32)
    dek_id = secrets.randbelow(2**31 - 1) + 1
    kek = cipher.keks[0]
    row = DataKey(id=dek_id, kek_id=kek.key_id, wrapped=kek.wrap(key, dek_aad(dek_id)))
    session.add(row)
    await session.flush()
    cipher.add_data_key(dek_id, key, current=True)
    return row


async def ensure_data_key(session: AsyncSession, cipher: Cipher) -> None:
    """Make sure `cipher` has a current data key (loading or creating it)."""
    if cipher.current is None:
        await load_data_keys(session, cipher)


async def seal(
    session: AsyncSession, cipher: Cipher, row: Any, values: dict[Any, str | None]
) -> None:
    """Encrypt `values` ({mapped column: text or None}) into `row`, bound to its id.

    A row without its primary key yet is added and flushed first (with empty
    placeholders), then the values are set: an UPDATE of ciphertext columns only, which the
    immutability guards allow.
    """
    await ensure_data_key(session, cipher)
    state = inspect(row)
    if any(value is None for value in state.mapper.primary_key_from_instance(row)):
        for column, text in values.items():
            setattr(row, column.key, b"" if text is not None else None)
        session.add(row)
        await session.flush()
    (row_id,) = state.mapper.primary_key_from_instance(row)
    record = record_of(row)
    key_id = None
    if record is not None:
        key_id = await record_key(session, cipher, incident_id=record[0], paper_record_id=record[1])
    for column, text in values.items():
        ct = cipher.encrypt(text, bind(column, row_id), key_id=key_id) if text is not None else None
        setattr(row, column.key, ct)


async def close_legacy(session: AsyncSession, cipher: Cipher) -> None:
    """From now on, refuse values in the legacy format (none is left to read)."""
    state = await session.get(EncryptionState, 1)
    if state is None:
        session.add(EncryptionState(id=1, legacy_closed_at=utcnow()))
    elif state.legacy_closed_at is None:
        state.legacy_closed_at = utcnow()
    await session.flush()
    cipher.accept_legacy = False


# -- record keys (crypto-shredding) ------------------------------------------------------

# The tables whose values belong to one record: its concern's column, its paper record's.
RECORD_OWNED: dict[type, tuple[Any, Any]] = {
    Incident: (Incident.id, None),
    IncidentAdult: (IncidentAdult.incident_id, None),
    IncidentAction: (IncidentAction.incident_id, None),
    BodyMap: (BodyMap.incident_id, None),
    Referral: (Referral.incident_id, None),
    PaperRecord: (None, PaperRecord.id),
    RetentionHold: (RetentionHold.incident_id, RetentionHold.paper_record_id),
}


def record_of(row: Any) -> tuple[int | None, int | None] | None:
    """(incident id, paper record id) of the record a row belongs to, or None for a row
    of no record (pupils, staff, the school's own keys: sealed under the data key)."""
    owners = RECORD_OWNED.get(type(row))
    if owners is None:
        return None
    incident, paper = (getattr(row, c.key) if c is not None else None for c in owners)
    return (incident, paper) if incident is not None or paper is not None else None


def _owner(incident_id: int | None, paper_record_id: int | None) -> str:
    return f"incident:{incident_id}" if incident_id is not None else f"paper:{paper_record_id}"


def _add_record_key(cipher: Cipher, row: Any) -> None:
    """Unwrap a `record_keys` row into `cipher` (its data key must be loaded)."""
    key = cipher.unwrap_file_key(
        bytes(row.wrapped), record_key_aad(row.id, _owner(row.incident_id, row.paper_record_id))
    )
    if key is None:
        log.error("crypto.integrity_error", table="record_keys", column="wrapped", row=row.id)
        raise IntegrityError(f"record key {row.id} does not unwrap for its record")
    cipher.add_record_key(row.id, key)


_COLUMNS = (RecordKey.id, RecordKey.incident_id, RecordKey.paper_record_id, RecordKey.wrapped)


async def record_key(
    session: AsyncSession,
    cipher: Cipher,
    *,
    incident_id: int | None = None,
    paper_record_id: int | None = None,
) -> int:
    """The id of the record's key, loaded into `cipher`; made now (random, wrapped by the
    current data key) if the record has none yet. Asked of the database each time: a key
    made in a transaction that rolled back is never used again."""
    assert (incident_id is None) != (paper_record_id is None)
    await ensure_data_key(session, cipher)
    where = (
        RecordKey.incident_id == incident_id
        if incident_id is not None
        else RecordKey.paper_record_id == paper_record_id
    )
    row = (await session.execute(select(*_COLUMNS).where(where))).first()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    while row is None:
        key = secrets.token_bytes(32)
        key_id = RECORD_KEY_BIT + secrets.randbelow(2**31)
        owner = _owner(incident_id, paper_record_id)
        values = {
            "id": key_id,
            "incident_id": incident_id,
            "paper_record_id": paper_record_id,
            "data_key_id": cipher.current,
            "wrapped": cipher.wrap_file_key(key, record_key_aad(key_id, owner)),
            "created_at": utcnow(),
        }
        # Two transactions making the same record's key at once: the second keeps the
        # first's (on PostgreSQL it waits for the first to commit, then reads its row).
        # An id already taken (random ids do meet, rarely): nothing written, another id.
        await session.execute(dialect.insert(RecordKey).values(values).on_conflict_do_nothing())
        row = (await session.execute(select(*_COLUMNS).where(where))).first()
    if not cipher.has_data_key(row.id):
        _add_record_key(cipher, row)
    return int(row.id)


def fresh_record_key(cipher: Cipher, *, incident_id: int) -> dict[str, Any]:
    """A new random key for a concern being filed now (its id taken up front, so no key
    can exist for it yet), loaded into `cipher`: the `record_keys` row, to be written by
    `store_fresh_record_key` once the incident is. Values can be sealed under it at once
    (`seal_values`), so a new concern is written with its ciphertext, never updated."""
    assert cipher.current is not None  # `ensure_data_key` first
    key = secrets.token_bytes(32)
    key_id = RECORD_KEY_BIT + secrets.randbelow(2**31)
    row = {
        "id": key_id,
        "incident_id": incident_id,
        "paper_record_id": None,
        "data_key_id": cipher.current,
        "wrapped": cipher.wrap_file_key(key, record_key_aad(key_id, _owner(incident_id, None))),
        "created_at": utcnow(),
    }
    cipher.add_record_key(key_id, key)
    return row


def fresh_record_key_write(row: dict[str, Any]) -> bulk.Rows:
    """The INSERT of a `fresh_record_key` row, as a write of `store.bulk.write_all`,
    returning its id: none when that random id is already taken (rarely), and then the
    caller seals again under another key."""
    return bulk.Rows(bulk.table_of(RecordKey), [row], skip_conflicts=True, returning="id")


async def store_fresh_record_key(
    session: AsyncSession, cipher: Cipher, row: dict[str, Any]
) -> bool:
    """Write a `fresh_record_key` row (one statement); False, and the key forgotten, when
    its random id is already taken (rarely): the caller seals again under another."""
    if await bulk.write_all(session, [], fresh_record_key_write(row)) is None:
        cipher.forget_key(row["id"])
        return False
    return True


def seal_values(
    cipher: Cipher, row_id: int, values: dict[Any, str | None], *, key_id: int | None
) -> dict[str, bytes | None]:
    """`values` ({mapped column: text or None}) encrypted for the row with id `row_id`
    (under the record key `key_id`, if given), by attribute name."""
    return {
        column.key: cipher.encrypt(text, bind(column, row_id), key_id=key_id)
        if text is not None
        else None
        for column, text in values.items()
    }


async def load_record_keys(
    session: AsyncSession | AsyncConnection, cipher: Cipher, *, key_ids: Iterable[int] = ()
) -> int:
    """Load the record keys `cipher` does not have: all on the first call, then those
    made since its last load (less `RELOAD_MARGIN`) and those named by `key_ids`; how
    many were loaded. Called at start-up by `load_data_keys`, and when a value needs a
    record key not loaded (`store.crypto.RecordKeyNotLoaded`)."""
    since = cipher.record_keys_loaded_at
    newest = await session.scalar(select(func.max(RecordKey.created_at)))
    query = select(*_COLUMNS)
    wanted = list(key_ids)
    if since is not None:
        recent = RecordKey.created_at >= since - RELOAD_MARGIN
        query = query.where(or_(recent, RecordKey.id.in_(wanted)) if wanted else recent)
    loaded = 0
    for row in (await session.execute(query)).all():
        if not cipher.has_data_key(row.id):
            try:
                _add_record_key(cipher, row)
            except IntegrityError:
                continue  # logged: its record's values cannot be shown, the rest can
            loaded += 1
    cipher.record_keys_loaded_at = newest or since or utcnow() - RELOAD_MARGIN
    return loaded


async def destroy_record_key(
    session: AsyncSession,
    cipher: Cipher,
    *,
    incident_id: int | None = None,
    paper_record_id: int | None = None,
) -> int:
    """Delete the record's key (crypto-shredding: every value sealed under it, wherever a
    copy is kept, can no longer be opened) and forget it here; how many were deleted."""
    where = (
        RecordKey.incident_id == incident_id
        if incident_id is not None
        else RecordKey.paper_record_id == paper_record_id
    )
    ids = list((await session.scalars(select(RecordKey.id).where(where))).all())
    await session.execute(
        delete(RecordKey).where(where), execution_options={"synchronize_session": False}
    )
    for key_id in ids:
        cipher.forget_key(key_id)
    return len(ids)
