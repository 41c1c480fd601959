"""alerts and incident_invites: withdrawn_at, when a key-holder withdrew the person's access

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, no default): instant on both databases.
    op.add_column("alerts", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "incident_invites", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("incident_invites") as batch:
        batch.drop_column("withdrawn_at")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("withdrawn_at")
