"""subject access requests: the request (who asked, encrypted), its deadline and redactions

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0019"
down_revision = "0024"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subject_access_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("pupil_id", ID, nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("requester_ct", sa.LargeBinary(), nullable=True),
        sa.Column("redact_staff", sa.Boolean(), nullable=False),
        sa.Column("opened_by_id", ID, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("exported_at", WHEN, nullable=True),
        sa.Column("completed_at", WHEN, nullable=True),
        sa.Column("completed_by_id", ID, nullable=True),
        sa.Column("last_nudged_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_subject_access_requests_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["pupil_id"], ["pupils.id"], name=op.f("fk_subject_access_requests_pupil_id_pupils")
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_id"],
            ["staff.id"],
            name=op.f("fk_subject_access_requests_opened_by_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["completed_by_id"],
            ["staff.id"],
            name=op.f("fk_subject_access_requests_completed_by_id_staff"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_access_requests")),
    )
    with op.batch_alter_table("subject_access_requests", schema=None) as batch_op:
        batch_op.create_index("ix_subject_access_open", ["completed_at", "due_on"])
        batch_op.create_index(
            batch_op.f("ix_subject_access_requests_workspace_id"), ["workspace_id"]
        )
    op.create_table(
        "sar_redactions",
        sa.Column("id", ID, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("phrase_ct", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("added_by_id", ID, nullable=True),
        sa.Column("removed_at", WHEN, nullable=True),
        sa.Column("removed_by_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["subject_access_requests.id"],
            name=op.f("fk_sar_redactions_request_id_subject_access_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["staff.id"], name=op.f("fk_sar_redactions_added_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["removed_by_id"], ["staff.id"], name=op.f("fk_sar_redactions_removed_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sar_redactions")),
    )
    with op.batch_alter_table("sar_redactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sar_redactions_request_id"), ["request_id"])


def downgrade() -> None:
    op.drop_table("sar_redactions")
    op.drop_table("subject_access_requests")
