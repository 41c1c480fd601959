"""record keys: each concern and paper record sealed under a key of its own

`record_keys` holds one random key per concern (`incident_id`) or paper record
(`paper_record_id`), wrapped by a data key (`data_key_id`). The record's values are
sealed under it, so destroying the record deletes its key and what any copy of its
ciphertexts held becomes unreadable (crypto-shredding, docs/record-encryption.md).
Values sealed before stay readable under their data key; `vigil rotate-key` moves them
under their record's key. Like a record's rows, a key may be deleted only by a
destruction (the triggers of migration 0018 check its permit) and never changed or
truncated. The upgrade converts nothing (it is instant); the downgrade
re-seals every value sealed under a record key under the current data key first (so it
needs the data key, like migration 0020), then drops the table.

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

import store.models
from store import keyring
from store.crypto import Binding, Cipher, is_record_key, key_id_of, record_key_aad
from store.documents.sealing import row_binding
from store.migrate import KeyNeeded

revision = "0025"
down_revision = "0020"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "record_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("incident_id", ID, nullable=True),
        sa.Column("paper_record_id", ID, nullable=True),
        sa.Column("data_key_id", sa.BigInteger(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_record_keys_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["paper_record_id"],
            ["paper_records.id"],
            name=op.f("fk_record_keys_paper_record_id_paper_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_keys")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_record_keys_incident_id")),
        sa.UniqueConstraint("paper_record_id", name=op.f("uq_record_keys_paper_record_id")),
    )
    op.create_index(op.f("ix_record_keys_created_at"), "record_keys", ["created_at"])
    if op.get_bind().dialect.name == "postgresql":
        for trigger in (
            "record_keys_no_update BEFORE UPDATE ON record_keys FOR EACH ROW "
            "EXECUTE FUNCTION vigil_refuse_change()",
            "record_keys_no_delete BEFORE DELETE ON record_keys FOR EACH ROW "
            "EXECUTE FUNCTION vigil_refuse_change()",
            "record_keys_no_truncate BEFORE TRUNCATE ON record_keys FOR EACH STATEMENT "
            "EXECUTE FUNCTION vigil_refuse_truncate()",
        ):
            op.execute(f"CREATE TRIGGER {trigger}")
    else:
        op.execute(
            "CREATE TRIGGER record_keys_no_update BEFORE UPDATE ON record_keys "
            "BEGIN SELECT RAISE(ABORT, 'vigil: record_keys rows are immutable once stored'); END"
        )
        op.execute(
            "CREATE TRIGGER record_keys_no_delete BEFORE DELETE ON record_keys "
            "WHEN NOT EXISTS (SELECT 1 FROM destruction_permits) "
            "BEGIN SELECT RAISE(ABORT, 'vigil: record_keys rows are immutable once stored'); END"
        )


# The values of a record when this revision was written: (table, primary key, column).
RECORD_VALUES = (
    ("incidents", "id", "narrative_ct"),
    ("incidents", "id", "parents_reason_ct"),
    ("incident_adults", "incident_id", "name_ct"),
    ("incident_actions", "id", "text_ct"),
    ("body_maps", "id", "marks_ct"),
    ("referrals", "id", "reference_ct"),
    ("paper_records", "id", "description_ct"),
    ("retention_holds", "id", "reason_ct"),
)


def _cipher(connection: Any) -> Cipher:
    """The configured cipher, with every data key and record key loaded."""
    cipher = context.config.attributes.get("cipher")
    if cipher is None:
        raise KeyNeeded(
            "this downgrade re-seals the records sealed under their own keys under the "
            "data key, which needs it: set VIGIL_DATA_KEY and run it again. Nothing was "
            "changed."
        )
    assert isinstance(cipher, Cipher)
    rows = connection.execute(
        sa.text("SELECT id, kek_id, wrapped FROM data_keys ORDER BY created_at, id")
    ).all()
    for row in rows:
        key = keyring.unwrap(cipher, row)
        if key is None:
            raise KeyNeeded(f"VIGIL_DATA_KEY does not unwrap data key {row.id}")
        cipher.add_data_key(row.id, key, current=True)
    for row in connection.execute(
        sa.text("SELECT id, incident_id, paper_record_id, wrapped FROM record_keys")
    ).all():
        owner = (
            f"incident:{row.incident_id}"
            if row.incident_id is not None
            else f"paper:{row.paper_record_id}"
        )
        key = cipher.unwrap_file_key(bytes(row.wrapped), record_key_aad(row.id, owner))
        if key is not None:
            cipher.add_record_key(row.id, key)
    return cipher


def _under_record_key(token: Any) -> bool:
    return token is not None and is_record_key(key_id_of(bytes(token)) or 0)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT id FROM record_keys LIMIT 1")).first() is not None:
        cipher = _cipher(connection)
        for table, pk, column in RECORD_VALUES:
            values = sa.table(table, sa.column(pk), sa.column(column))
            rows = connection.execute(
                sa.select(values.c[pk], values.c[column]).where(values.c[column].is_not(None))
            ).all()
            for row_id, token in rows:
                if not _under_record_key(token):
                    continue
                where = Binding(table, column, row_id)
                text = cipher.decrypt(bytes(token), where)
                connection.execute(
                    sa.update(values)
                    .where(values.c[pk] == row_id)
                    .values({column: cipher.encrypt(text, where)})
                )
        files = connection.execute(
            sa.text(
                "SELECT id, token, workspace_id, incident_id, action_id, paper_record_id, "
                "key_ct FROM files"
            )
        ).all()
        for row in files:
            if not _under_record_key(row.key_ct):
                continue
            if row.paper_record_id is not None:
                owner = f"paper:{row.paper_record_id}"
            else:
                action = f"/action:{row.action_id}" if row.action_id is not None else ""
                owner = f"incident:{row.incident_id}{action}"
            binding = row_binding(token=row.token, workspace_id=row.workspace_id, owner=owner)
            key = cipher.unwrap_file_key(bytes(row.key_ct), binding)
            assert key is not None, f"file {row.id}: its key does not unwrap"
            connection.execute(
                sa.text("UPDATE files SET key_ct = :ct WHERE id = :id"),
                {"ct": cipher.wrap_file_key(key, binding), "id": row.id},
            )
    op.drop_index(op.f("ix_record_keys_created_at"), table_name="record_keys")
    op.drop_table("record_keys")
