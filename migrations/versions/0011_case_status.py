"""case_status_changes: a concern set to open, monitoring or closed (append-only), and
case_statuses: each concern's status now (the latest change), for the caseload and search

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLE = "case_status_changes"
CURRENT = "case_statuses"
COLUMNS = "id, workspace_id, incident_id, action_id, status, outcome, author_id, created_at"
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("author_id", ID, nullable=False),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["incident_actions.id"],
            name=op.f("fk_case_status_changes_action_id_incident_actions"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff.id"], name=op.f("fk_case_status_changes_author_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_case_status_changes_incident_id_incidents"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_case_status_changes_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_status_changes")),
        sa.UniqueConstraint("action_id", name=op.f("uq_case_status_changes_action_id")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index("ix_case_status_changes_incident", ["incident_id", "id"])

    op.create_table(
        CURRENT,
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("change_id", ID, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("changed_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["case_status_changes.id"],
            name=op.f("fk_case_statuses_change_id_case_status_changes"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_case_statuses_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_case_statuses_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_case_statuses")),
    )
    with op.batch_alter_table(CURRENT, schema=None) as batch_op:
        batch_op.create_index("ix_case_statuses_workspace_status", ["workspace_id", "status"])

    if op.get_bind().dialect.name == "postgresql":
        for event, name in ((f"UPDATE OF {COLUMNS}", "no_update"), ("DELETE", "no_delete")):
            op.execute(
                f"CREATE TRIGGER {TABLE}_{name} BEFORE {event} ON {TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change()"
            )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_truncate()"
        )
    else:
        message = f"vigil: {TABLE} rows are immutable once stored"
        for event, name in ((f"UPDATE OF {COLUMNS}", "no_update"), ("DELETE", "no_delete")):
            op.execute(
                f"CREATE TRIGGER {TABLE}_{name} BEFORE {event} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    suffix = f" ON {TABLE}" if postgresql else ""
    names = ("no_update", "no_delete", "no_truncate") if postgresql else ("no_update", "no_delete")
    for name in names:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name}{suffix}")
    with op.batch_alter_table(CURRENT, schema=None) as batch_op:
        batch_op.drop_index("ix_case_statuses_workspace_status")
    op.drop_table(CURRENT)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index("ix_case_status_changes_incident")
    op.drop_table(TABLE)
