"""incident numbers: a number is taken in a short transaction of its own (PostgreSQL), and
any number taken but never used is a row of `incident_number_gaps`, with its reason

Revision ID: 0024
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident_number_gaps",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("taken_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_incident_number_gaps_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_number_gaps")),
        sa.UniqueConstraint("workspace_id", "number", name="uq_incident_number_gaps_number"),
    )


def downgrade() -> None:
    op.drop_table("incident_number_gaps")
