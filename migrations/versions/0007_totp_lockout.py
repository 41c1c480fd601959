"""totp_enrolments: locked after too many wrong codes in a day, until a key-holder unlocks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): instant on both databases.
    op.add_column(
        "totp_enrolments", sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("totp_enrolments") as batch:
        batch.drop_column("locked_at")
