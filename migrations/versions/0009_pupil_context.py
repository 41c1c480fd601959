"""pupil context (CP plan, CIN, LAC, SEN...) with its history, leavers, wrong-child corrections

`pupil_context` holds each pupil's current flags (the social worker's name encrypted);
`pupil_context_changes` the dated history (append-only); `pupils.left_on` the day a
re-import found a pupil missing; `incident_pupil_corrections` a key-holder's "filed
against the wrong pupil" (append-only: the incident keeps the pupil it was filed with).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Append-only: every column but the ciphertext (which `vigil rotate-key` may re-encrypt).
APPEND_ONLY = {
    "pupil_context_changes": "id, workspace_id, pupil_id, at, flag, value, source, actor_id",
    "incident_pupil_corrections": (
        "id, workspace_id, incident_id, original_pupil_id, wrong_pupil_id, right_pupil_id, "
        "author_id, created_at"
    ),
}


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_{column}_{target.split('.')[0]}")
    return sa.ForeignKeyConstraint([column], [target], name=name)


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): instant on both databases.
    op.add_column("pupils", sa.Column("left_on", sa.Date(), nullable=True))
    op.create_table(
        "pupil_context",
        sa.Column("pupil_id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("cp_plan", sa.Boolean(), nullable=False),
        sa.Column("cin", sa.Boolean(), nullable=False),
        sa.Column("lac", sa.Boolean(), nullable=False),
        sa.Column("previously_lac", sa.Boolean(), nullable=False),
        sa.Column("sen", sa.String(length=1), nullable=False),
        sa.Column("young_carer", sa.Boolean(), nullable=False),
        sa.Column("eal", sa.Boolean(), nullable=False),
        sa.Column("social_worker_ct", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", store.models.UTCDateTime(timezone=True), nullable=False),
        _fk("pupil_context", "pupil_id", "pupils.id"),
        _fk("pupil_context", "workspace_id", "workspaces.id"),
        sa.PrimaryKeyConstraint("pupil_id", name=op.f("pk_pupil_context")),
    )
    op.create_table(
        "pupil_context_changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("pupil_id", ID, nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("flag", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=1), nullable=True),
        sa.Column("value_ct", sa.LargeBinary(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        _fk("pupil_context_changes", "actor_id", "staff.id"),
        _fk("pupil_context_changes", "pupil_id", "pupils.id"),
        _fk("pupil_context_changes", "workspace_id", "workspaces.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pupil_context_changes")),
    )
    op.create_index("ix_pupil_context_changes_pupil", "pupil_context_changes", ["pupil_id", "at"])
    op.create_table(
        "incident_pupil_corrections",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("original_pupil_id", ID, nullable=False),
        sa.Column("wrong_pupil_id", ID, nullable=False),
        sa.Column("right_pupil_id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=False),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        _fk("incident_pupil_corrections", "author_id", "staff.id"),
        _fk("incident_pupil_corrections", "incident_id", "incidents.id"),
        _fk("incident_pupil_corrections", "original_pupil_id", "pupils.id"),
        _fk("incident_pupil_corrections", "right_pupil_id", "pupils.id"),
        _fk("incident_pupil_corrections", "workspace_id", "workspaces.id"),
        _fk("incident_pupil_corrections", "wrong_pupil_id", "pupils.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_pupil_corrections")),
    )
    op.create_index(
        "ix_incident_pupil_corrections_incident",
        "incident_pupil_corrections",
        ["incident_id", "id"],
    )
    op.create_index(
        "ix_incident_pupil_corrections_right", "incident_pupil_corrections", ["right_pupil_id"]
    )
    op.create_index(
        "ix_incident_pupil_corrections_wrong", "incident_pupil_corrections", ["wrong_pupil_id"]
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, columns in APPEND_ONLY.items():
        for event, name in ((f"UPDATE OF {columns}", "no_update"), ("DELETE", "no_delete")):
            if postgresql:
                op.execute(
                    f"CREATE TRIGGER {table}_{name} BEFORE {event} ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change()"
                )
            else:
                message = f"vigil: {table} rows are immutable once stored"
                op.execute(
                    f"CREATE TRIGGER {table}_{name} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
        if postgresql:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_truncate()"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in APPEND_ONLY:
        suffix = f" ON {table}" if postgresql else ""
        for name in ("no_update", "no_delete", "no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{name}{suffix}")
    op.drop_index("ix_incident_pupil_corrections_wrong", "incident_pupil_corrections")
    op.drop_index("ix_incident_pupil_corrections_right", "incident_pupil_corrections")
    op.drop_index("ix_incident_pupil_corrections_incident", "incident_pupil_corrections")
    op.drop_table("incident_pupil_corrections")
    op.drop_index("ix_pupil_context_changes_pupil", "pupil_context_changes")
    op.drop_table("pupil_context_changes")
    op.drop_table("pupil_context")
    with op.batch_alter_table("pupils") as batch:
        batch.drop_column("left_on")
