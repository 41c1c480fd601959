"""The data keys of the envelope encryption (`store.crypto`), and sealing a row's values.

`load_data_keys` unwraps every stored data key with the configured key-encryption keys
(creating the first data key on a new database); a data key that no configured KEK
unwraps is a `KeyUnavailable` error naming it, raised at start-up. `seal` encrypts values
into a row, bound to its table, column and id (flushing a new row first, for its id).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from store.crypto import Cipher, KeyEncryptionKey, MissingKeyError, bind, dek_aad
from store.models import DataKey, EncryptionState, utcnow


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
    session: AsyncSession | AsyncConnection, cipher: Cipher, *, create: bool = True
) -> None:
    """Load every data key into `cipher`; the newest is used for new values (a new
    database gets its first, when `session` is a session and `create` is true)."""
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
    for column, text in values.items():
        ct = cipher.encrypt(text, bind(column, row_id)) if text is not None else None
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
