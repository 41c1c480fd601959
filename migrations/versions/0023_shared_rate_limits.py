"""slack_rate_limits: a 429's Retry-After shared by every process's delivery worker

Revision ID: 0023
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slack_rate_limits",
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("until", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_slack_rate_limits_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "method", name=op.f("pk_slack_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("slack_rate_limits")
