"""search_keys: each workspace's key for search tokens (stored encrypted), and
narrative_tokens: the keyed hashes of the words of each concern's narrative and actions
(`store.textsearch`); filled for concerns stored before by `vigil search reindex`;
and case_statuses for every concern (open from its filing, change_id empty), with the
concern's created_at, so the caseload is a range of a partial index

Every existing concern without a status row gets one (open): one INSERT … SELECT, a
second or two for 100,000 concerns.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0016"
down_revision = "0015"
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

    # Every concern has a status row from its filing; the caseload walks the rows of the
    # concerns not closed, oldest first.
    with op.batch_alter_table("case_statuses", schema=None) as batch_op:
        batch_op.alter_column("change_id", existing_type=ID, nullable=True)
        batch_op.add_column(
            sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE case_statuses SET created_at = (SELECT incidents.created_at FROM incidents "
        "WHERE incidents.id = case_statuses.incident_id)"
    )
    op.execute(
        "INSERT INTO case_statuses "
        "(incident_id, workspace_id, change_id, status, outcome, changed_at, created_at) "
        "SELECT id, workspace_id, NULL, 'open', NULL, created_at, created_at FROM incidents "
        "WHERE NOT EXISTS "
        "(SELECT 1 FROM case_statuses WHERE case_statuses.incident_id = incidents.id)"
    )
    with op.batch_alter_table("case_statuses", schema=None) as batch_op:
        batch_op.alter_column(
            "created_at", existing_type=store.models.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            "ix_case_statuses_caseload",
            ["workspace_id", "created_at", "incident_id"],
            postgresql_where=sa.text("status <> 'closed'"),
            sqlite_where=sa.text("status <> 'closed'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("case_statuses", schema=None) as batch_op:
        batch_op.drop_index("ix_case_statuses_caseload")
    op.execute("DELETE FROM case_statuses WHERE change_id IS NULL")
    with op.batch_alter_table("case_statuses", schema=None) as batch_op:
        batch_op.drop_column("created_at")
        batch_op.alter_column("change_id", existing_type=ID, nullable=False)
    with op.batch_alter_table("narrative_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_narrative_tokens_incident")
    op.drop_table("narrative_tokens")
    op.drop_table("search_keys")
