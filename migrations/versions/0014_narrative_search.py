"""search_keys: each workspace's key for search tokens (stored encrypted), and
narrative_tokens: the keyed hashes of the words of each concern's narrative and actions
(`store.textsearch`); filled for concerns stored before by `vigil search reindex`

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "search_keys",
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("key_ct", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_search_keys_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_search_keys")),
    )
    op.create_table(
        "narrative_tokens",
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_narrative_tokens_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("token", "incident_id", name=op.f("pk_narrative_tokens")),
    )
    with op.batch_alter_table("narrative_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_narrative_tokens_incident", ["incident_id"])


def downgrade() -> None:
    with op.batch_alter_table("narrative_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_narrative_tokens_incident")
    op.drop_table("narrative_tokens")
    op.drop_table("search_keys")
