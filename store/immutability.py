"""Incidents cannot be changed once stored (DESIGN §2.2): corrections are actions.

Two layers enforce it: this ORM guard refuses any flush that updates or deletes an
incident row (or the pupils, categories and agencies it was filed with), and database
triggers (see the migrations) refuse the same in plain SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from store.models import CIPHERTEXT_COLUMNS, IMMUTABLE_TABLES


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
    for obj in session.deleted:
        table = getattr(obj, "__tablename__", None)
        if table in IMMUTABLE_TABLES:
            raise ImmutableRecordError(f"{table} rows cannot be deleted")


def install() -> None:
    """Attach the guard to every ORM session (idempotent)."""
    if not event.contains(Session, "before_flush", _check):
        event.listen(Session, "before_flush", _check)
