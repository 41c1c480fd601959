"""transfers: school keys, trusted cards, packs sent (and receipted), packs imported

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "transfer_keys",
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("receive_ct", sa.LargeBinary(), nullable=False),
        sa.Column("sign_ct", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("transfer_keys", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_transfer_keys")),
    )
    op.create_table(
        "transfer_cards",
        sa.Column("id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("receive_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_key", sa.LargeBinary(), nullable=False),
        sa.Column("trusted_at", sa.DateTime(timezone=True), nullable=False),
        _fk("transfer_cards", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_cards")),
        sa.UniqueConstraint("workspace_id", "fingerprint", name="uq_transfer_cards_fingerprint"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("pack_id", sa.String(length=40), nullable=False),
        sa.Column("pupil_id", Id, nullable=False),
        sa.Column("to_fingerprint", sa.String(length=32), nullable=False),
        sa.Column("to_name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nudged_at", sa.DateTime(timezone=True), nullable=True),
        _fk("transfers", "workspace_id", "workspaces"),
        _fk("transfers", "pupil_id", "pupils"),
        _fk("transfers", "created_by_id", "staff"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("pack_id", name=op.f("uq_transfers_pack_id")),
    )
    op.create_index("ix_transfers_open", "transfers", ["workspace_id", "receipted_at"])
    op.create_table(
        "transfer_imports",
        sa.Column("id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("pack_id", sa.String(length=40), nullable=False),
        sa.Column("from_fingerprint", sa.String(length=32), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.Column("pupil_id", Id, nullable=False),
        sa.Column("imported_by_id", Id, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        _fk("transfer_imports", "workspace_id", "workspaces"),
        _fk("transfer_imports", "pupil_id", "pupils"),
        _fk("transfer_imports", "imported_by_id", "staff"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_imports")),
        sa.UniqueConstraint("workspace_id", "pack_id", name="uq_transfer_imports_pack"),
    )


def downgrade() -> None:
    op.drop_table("transfer_imports")
    op.drop_index("ix_transfers_open", table_name="transfers")
    op.drop_table("transfers")
    op.drop_table("transfer_cards")
    op.drop_table("transfer_keys")
