"""outbox: which worker holds a claim

A worker whose claim transaction fails as the connection dies cannot know whether it
committed. With its id on the rows it claims, it releases such rows as soon as the
database is back, instead of leaving them until the lease runs out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): instant on both databases.
    op.add_column("outbox", sa.Column("claimed_by", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
