"""a dump reveals no child: pupils' names, dates of birth and UPNs, and agencies'
references, stored only encrypted (bound to their row); the UPN and the reference also as
keyed hashes; each workspace's roster_version (the in-memory roster's freshness)

`pupils.details_ct` holds a pupil's UPN, names and date of birth, sealed with the data key
and bound to the row (`store.crypto`); the `upn` column now holds the UPN's keyed hash
(HMAC under the workspace's search key, `store.textsearch.upn_hash`), so the unique key
and every lookup by UPN keep working; `forename`, `surname`, `preferred_name`,
`date_of_birth` and `search_text` are dropped. `referrals.reference` becomes
`reference_ct` (sealed) and `reference_hash` (keyed hash, the caseload's filter).

Existing rows are converted here, in the migration's transaction, which needs the data
key: `vigil db upgrade` passes the cipher of `VIGIL_DATA_KEY` (`store.migrate.upgrade`).
A database with pupils or references and no key given is refused with a clear message,
before anything changes. Plain `ALTER TABLE … DROP COLUMN`s on SQLite (no table rebuilt:
other tables' foreign keys point at `pupils`). Once committed, `store.migrate.scrub`
rewrites the file (SQLite) or the two tables (PostgreSQL), so no plain copy is left in
free pages, the write-ahead log or old row versions.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from store import keyring, textsearch
from store.crypto import Cipher, bind, dek_aad
from store.migrate import KeyNeeded
from store.models import Pupil, PupilDetails, Referral
from store.pupils import search_text

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

PUPIL_COLUMNS = ("forename", "surname", "preferred_name", "date_of_birth", "search_text")


def _cipher(connection: Any, *, purpose: str) -> Cipher:
    cipher = context.config.attributes.get("cipher")
    if cipher is None:
        raise KeyNeeded(
            f"this upgrade {purpose} pupils' names and agencies' references, which needs "
            "the data key: set VIGIL_DATA_KEY (the key the records are encrypted with) "
            "and run `vigil db upgrade` again. Nothing was changed."
        )
    assert isinstance(cipher, Cipher)
    rows = connection.execute(
        sa.text("SELECT id, kek_id, wrapped FROM data_keys ORDER BY created_at, id")
    ).all()
    for row in rows:
        if cipher.has_data_key(row.id):
            continue
        key = keyring.unwrap(cipher, row)
        if key is None:
            raise KeyNeeded(
                f"VIGIL_DATA_KEY does not unwrap data key {row.id}: set the key the "
                "records are encrypted with and run `vigil db upgrade` again"
            )
        cipher.add_data_key(row.id, key, current=True)
    if rows:
        cipher.current = rows[-1].id
    elif cipher.current is None:  # a database that never stored a data key
        key = secrets.token_bytes(32)
        dek_id = secrets.randbelow(2**31 - 1) + 1
        kek = cipher.keks[0]
        connection.execute(
            sa.text(
                "INSERT INTO data_keys (id, kek_id, wrapped, created_at) "
                "VALUES (:id, :kek, :wrapped, :at)"
            ),
            {
                "id": dek_id,
                "kek": kek.key_id,
                "wrapped": kek.wrap(key, dek_aad(dek_id)),
                "at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            },
        )
        cipher.add_data_key(dek_id, key, current=True)
    return cipher


def _search_key(connection: Any, cipher: Cipher, workspace_id: int) -> bytes:
    """The workspace's search key (made, as `store.textsearch.search_key` would, if none)."""
    stored = connection.execute(
        sa.text("SELECT key_ct FROM search_keys WHERE workspace_id = :w"), {"w": workspace_id}
    ).scalar()
    if stored is None:
        stored = textsearch.new_key(cipher, workspace_id)
        connection.execute(
            sa.text(
                "INSERT INTO search_keys (workspace_id, key_ct, created_at) VALUES (:w, :k, :at)"
            ),
            {"w": workspace_id, "k": stored, "at": dt.datetime.now(dt.UTC).replace(tzinfo=None)},
        )
    return textsearch.read_key(cipher, bytes(stored), workspace_id)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def upgrade() -> None:
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    pupils = connection.execute(
        sa.text(
            "SELECT id, workspace_id, upn, forename, surname, preferred_name, date_of_birth "
            "FROM pupils ORDER BY id"
        )
    ).all()
    references = connection.execute(
        sa.text(
            "SELECT id, workspace_id, reference FROM referrals "
            "WHERE reference IS NOT NULL ORDER BY id"
        )
    ).all()
    cipher = _cipher(connection, purpose="encrypts") if pupils or references else None

    op.add_column("workspaces", sa.Column("roster_version", sa.BigInteger(), nullable=True))
    for (workspace_id,) in connection.execute(sa.text("SELECT id FROM workspaces")).all():
        connection.execute(
            sa.text("UPDATE workspaces SET roster_version = :v WHERE id = :w"),
            {"v": secrets.randbits(62), "w": workspace_id},
        )
    op.add_column("pupils", sa.Column("details_ct", sa.LargeBinary(), nullable=True))
    op.add_column("referrals", sa.Column("reference_ct", sa.LargeBinary(), nullable=True))
    op.add_column("referrals", sa.Column("reference_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_referrals_reference_hash", "referrals", ["reference_hash"])

    keys: dict[int, bytes] = {}

    def key_of(workspace_id: int) -> bytes:
        assert cipher is not None
        if workspace_id not in keys:
            keys[workspace_id] = _search_key(connection, cipher, workspace_id)
        return keys[workspace_id]

    for row in pupils:
        assert cipher is not None
        details = PupilDetails(
            upn=str(row.upn).strip().upper(),
            forename=row.forename,
            surname=row.surname,
            preferred_name=row.preferred_name,
            date_of_birth=_date(row.date_of_birth),
        )
        connection.execute(
            sa.text("UPDATE pupils SET upn = :h, details_ct = :ct WHERE id = :id"),
            {
                "h": textsearch.upn_hash(key_of(row.workspace_id), details.upn),
                "ct": cipher.encrypt(details.sealed_text(), bind(Pupil.details_ct, row.id)),
                "id": row.id,
            },
        )
    for row in references:
        assert cipher is not None
        text = str(row.reference)
        connection.execute(
            sa.text("UPDATE referrals SET reference_ct = :ct, reference_hash = :h WHERE id = :id"),
            {
                "ct": cipher.encrypt(text, bind(Referral.reference_ct, row.id)),
                "h": textsearch.exact_hash(
                    key_of(row.workspace_id), "reference", "".join(text.split()).casefold()
                ),
                "id": row.id,
            },
        )
    for column in PUPIL_COLUMNS:
        _drop(sqlite, "pupils", column)
    _drop(sqlite, "referrals", "reference")
    if pupils or references:  # `store.migrate.upgrade` then leaves no plain copy on disk
        context.config.attributes["scrub"] = ["pupils", "referrals"]


def _drop(sqlite: bool, table: str, column: str) -> None:
    if sqlite:  # no rebuild (it would break the foreign keys that point at `pupils`)
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    pupils = connection.execute(sa.text("SELECT id, details_ct FROM pupils ORDER BY id")).all()
    references = connection.execute(
        sa.text("SELECT id, reference_ct FROM referrals WHERE reference_ct IS NOT NULL")
    ).all()
    cipher = _cipher(connection, purpose="decrypts") if pupils or references else None
    for name, kind in (
        ("forename", sa.String(length=100)),
        ("surname", sa.String(length=100)),
        ("preferred_name", sa.String(length=100)),
        ("date_of_birth", sa.Date()),
        ("search_text", sa.String(length=400)),
    ):
        op.add_column("pupils", sa.Column(name, kind, nullable=True))
    op.add_column("referrals", sa.Column("reference", sa.String(length=100), nullable=True))
    for row in pupils:
        assert cipher is not None
        details = PupilDetails.from_sealed_text(
            cipher.decrypt(bytes(row.details_ct), bind(Pupil.details_ct, row.id))
        )
        names = {
            "upn": details.upn,
            "forename": details.forename,
            "surname": details.surname,
            "preferred_name": details.preferred_name,
        }
        connection.execute(
            sa.text(
                "UPDATE pupils SET upn = :upn, forename = :forename, surname = :surname, "
                "preferred_name = :preferred_name, date_of_birth = :dob, search_text = :text "
                "WHERE id = :id"
            ),
            {**names, "dob": details.date_of_birth, "text": search_text(**names), "id": row.id},
        )
    for row in references:
        assert cipher is not None
        connection.execute(
            sa.text("UPDATE referrals SET reference = :r WHERE id = :id"),
            {
                "r": cipher.decrypt(bytes(row.reference_ct), bind(Referral.reference_ct, row.id)),
                "id": row.id,
            },
        )
    op.drop_index("ix_referrals_reference_hash", "referrals")
    _drop(sqlite, "referrals", "reference_hash")
    _drop(sqlite, "referrals", "reference_ct")
    _drop(sqlite, "pupils", "details_ct")
    _drop(sqlite, "workspaces", "roster_version")
    if not sqlite:
        for name in ("forename", "surname", "date_of_birth", "search_text"):
            op.alter_column("pupils", name, nullable=False)
