"""school_settings: a school's settings edited on its settings page (per workspace)

Revision ID: 0022
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "school_settings",
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_school_settings_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["staff.id"], name=op.f("fk_school_settings_updated_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_school_settings")),
    )


def downgrade() -> None:
    op.drop_table("school_settings")
