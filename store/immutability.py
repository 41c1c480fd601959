"""Incidents cannot be changed once stored (DESIGN §2.2): corrections are actions.

Two layers enforce it: this ORM guard refuses any flush that updates or deletes an
incident row (or the pupils, categories and agencies it was filed with), and any DELETE
statement on those tables run through a session; database triggers (see the
migrations) refuse the same in plain SQL.

One path may delete: the destruction of a record past its retention date
(`store.flows.retention.destroy`, DESIGN §14), inside `destruction_permit`, which marks
its session and writes the permit row the triggers look for (migration 0018), removed
again before the transaction ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Delete, delete, event, insert, inspect, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from store.models import CIPHERTEXT_COLUMNS, IMMUTABLE_TABLES, DestructionPermit

_PERMIT = "vigil_destruction_permit"


class ImmutableRecordError(Exception):
    """An attempt to change or delete part of a submitted incident."""


def _ciphertexts_only(obj: Any, allowed: frozenset[str]) -> bool:
    """True when the only changed attributes are ciphertext columns (re-encryption)."""
    state = inspect(obj)
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
    return bool(changed) and changed <= allowed


def _check(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.dirty:
        table = getattr(obj, "__tablename__", None)
        if table in IMMUTABLE_TABLES and session.is_modified(obj, include_collections=False):
            if _ciphertexts_only(obj, CIPHERTEXT_COLUMNS.get(table, frozenset())):
                continue
            raise ImmutableRecordError(f"{table} rows cannot be changed once stored")
    if session.info.get(_PERMIT):
        return
    for obj in session.deleted:
        table = getattr(obj, "__tablename__", None)
        if table in IMMUTABLE_TABLES:
            raise ImmutableRecordError(f"{table} rows cannot be deleted")


def _check_statement(state: ORMExecuteState) -> None:
    """Refuse a DELETE statement on an immutable table, but inside a destruction."""
    statement = state.statement
    if not isinstance(statement, Delete) or state.session.info.get(_PERMIT):
        return
    table = getattr(statement.table, "name", None)
    if table in IMMUTABLE_TABLES:
        raise ImmutableRecordError(f"{table} rows cannot be deleted")


@contextlib.asynccontextmanager
async def destruction_permit(session: AsyncSession) -> AsyncIterator[None]:
    """Allow, inside the block and in this session's transaction only, the deletions of
    one destruction (used by `store.flows.retention.destroy` alone). The permit row is
    removed at the end of the block; an error rolls the whole transaction back with it."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text(
                "INSERT INTO destruction_permits (txid, created_at) VALUES (txid_current(), now())"
            )
        )
    else:
        await session.execute(insert(DestructionPermit).values(txid=None))
    session.sync_session.info[_PERMIT] = True
    try:
        yield
        await session.flush()
    finally:
        session.sync_session.info.pop(_PERMIT, None)
    await session.execute(delete(DestructionPermit))


def install() -> None:
    """Attach the guard to every ORM session (idempotent)."""
    if not event.contains(Session, "before_flush", _check):
        event.listen(Session, "before_flush", _check)
    if not event.contains(Session, "do_orm_execute", _check_statement):
        event.listen(Session, "do_orm_execute", _check_statement)
