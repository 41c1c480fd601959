"""bound, envelope encryption: the data_keys table; ciphertext columns may be re-encrypted

`data_keys` holds the data keys (DEKs), each wrapped by a key-encryption key from
`VIGIL_DATA_KEY` (docs/record-encryption.md); `encryption_state` says whether values from
before data keys may still be read (closed once `vigil rotate-key` converted them all).
The immutability triggers of the tables that hold ciphertexts are re-created so that an
UPDATE of the ciphertext columns alone is allowed (how `vigil rotate-key` converts legacy
values and binds new rows to their id); an UPDATE of any other column, and every DELETE,
is still refused. Existing values are
converted by `vigil rotate-key`, not here: the migration is instant.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Immutable tables and their ciphertext columns (the only ones an UPDATE may now touch).
CIPHERTEXTS = {
    "incidents": ("narrative_ct", "parents_reason_ct"),
    "incident_adults": ("name_ct",),
    "incident_actions": ("text_ct",),
    "paper_records": ("description_ct",),
    "files": ("key_ct",),
    "body_maps": ("marks_ct",),
}


def _recreate(table: str, excluded: tuple[str, ...]) -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    columns = [c["name"] for c in sa.inspect(bind).get_columns(table) if c["name"] not in excluded]
    suffix = f" ON {table}" if dialect == "postgresql" else ""
    op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update{suffix}")
    event = f"UPDATE OF {', '.join(columns)}"
    if dialect == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE {event} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change()"
        )
    else:
        message = f"vigil: {table} rows are immutable once stored"
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE {event} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kek_id", sa.String(length=100), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
    )
    op.create_table(
        "encryption_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("legacy_closed_at", store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encryption_state")),
    )
    for table, excluded in CIPHERTEXTS.items():
        _recreate(table, excluded)


def downgrade() -> None:
    for table in CIPHERTEXTS:
        _recreate(table, ())
    op.drop_table("encryption_state")
    op.drop_table("data_keys")
