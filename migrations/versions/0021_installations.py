"""installations: Slack OAuth installs (tokens encrypted), the workspaces they serve, states

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0021"
down_revision = "0018"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("id", ID, nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_scopes", sa.String(length=1000), nullable=False),
        sa.Column("installer_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_token_ct", sa.LargeBinary(), nullable=False),
        sa.Column("installed_at", WHEN, nullable=False),
        sa.Column("uninstalled_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_installations")),
        sa.UniqueConstraint("key", name=op.f("uq_slack_installations_key")),
    )
    op.create_table(
        "workspace_installations",
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("installation_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["installation_id"],
            ["slack_installations.id"],
            name=op.f("fk_workspace_installations_installation_id_slack_installations"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_installations_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspace_installations")),
    )
    with op.batch_alter_table("workspace_installations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workspace_installations_installation_id"), ["installation_id"]
        )
    op.create_table(
        "slack_oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_slack_oauth_states")),
    )


def downgrade() -> None:
    op.drop_table("slack_oauth_states")
    with op.batch_alter_table("workspace_installations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_installations_installation_id"))
    op.drop_table("workspace_installations")
    op.drop_table("slack_installations")
