"""tasks: an action assigned to a member of staff with a due date (done, snoozes, nudges)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("assignee_id", ID, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("done_at", WHEN, nullable=True),
        sa.Column("done_by_id", ID, nullable=True),
        sa.Column("snoozed_until", WHEN, nullable=True),
        sa.Column("last_nudged_on", sa.Date(), nullable=True),
        sa.Column("dm_outbox_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"], ["incident_actions.id"], name=op.f("fk_tasks_action_id_incident_actions")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["staff.id"], name=op.f("fk_tasks_assignee_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["done_by_id"], ["staff.id"], name=op.f("fk_tasks_done_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_tasks_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_tasks_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("action_id", name=op.f("uq_tasks_action_id")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_assignee_open", ["assignee_id", "done_at", "due_on"])
        batch_op.create_index("ix_tasks_due", ["due_on"])


def downgrade() -> None:
    op.drop_table("tasks")
