"""What is stored encrypted, and whether the configured key can read it.

Narratives, parents-not-contacted reasons, action texts, authenticator secrets and
social workers' names are stored encrypted with `VIGIL_DATA_KEY` (`store.crypto`). A
database that holds any of them is tied to its key: `vigil init --force` must not replace
that key, and a server started with another key must say so at once rather than at the
first page a DSL opens.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.crypto import Cipher, DecryptionError
from store.models import (
    Incident,
    IncidentAction,
    PupilContextChange,
    TotpEnrolment,
)

_ENCRYPTED_COLUMNS = (
    Incident.narrative_ct,
    IncidentAction.text_ct,
    TotpEnrolment.secret_ct,
    PupilContextChange.value_ct,  # social workers' names
)


async def sample(session: AsyncSession) -> bytes | None:
    """One stored ciphertext (the oldest of the first kind found), or None if none is."""
    for column in _ENCRYPTED_COLUMNS:
        found = await session.scalar(select(column).limit(1))
        if found is not None:
            return bytes(found)
    return None


async def holds_encrypted_data(session: AsyncSession) -> bool:
    """True when anything in the database is encrypted with the data key."""
    return await sample(session) is not None


async def key_reads_stored_data(session: AsyncSession, *, cipher: Cipher) -> bool:
    """True when `cipher`'s keys decrypt what is stored (or nothing is stored yet)."""
    token = await sample(session)
    if token is None:
        return True
    try:
        cipher.decrypt(token)
    except DecryptionError:
        return False
    return True
