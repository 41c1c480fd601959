"""retention: legal holds, and the one permitted path that destroys a record

`retention_holds` keeps a record past its retention date (a legal hold, its reason
encrypted). `destruction_permits` is the permit of one destruction
(`store.flows.retention.destroy`): a row written and removed inside that transaction, so
no other transaction ever sees it. The immutability triggers now allow, while such a
permit exists, a DELETE of an append-only row and, on the audit log, an UPDATE that only
sets `incident_id` to NULL (the tombstone of a destroyed concern keeps its entries, not
the link). Without a permit they refuse exactly what they refused before. On PostgreSQL
the permit names its transaction (`txid_current()`); on SQLite one writer holds the
database at a time and an uncommitted row is seen by nobody else.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = store.models.UTCDateTime(timezone=True)

# store.models.IMMUTABLE_TABLES when this revision was written.
APPEND_ONLY = (
    "incidents",
    "incident_pupils",
    "incident_categories",
    "incident_agencies",
    "incident_adults",
    "incident_actions",
    "audit_log",
    "referral_events",
    "pupil_context_changes",
    "incident_pupil_corrections",
    "case_status_changes",
    "paper_records",
    "files",
    "file_chunks",
    "body_maps",
)

PERMITTED_PG = """
CREATE OR REPLACE FUNCTION vigil_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM destruction_permits WHERE txid = txid_current()) THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        IF TG_TABLE_NAME = 'audit_log' AND NEW.incident_id IS NULL
                AND (to_jsonb(NEW) - 'incident_id') = (to_jsonb(OLD) - 'incident_id') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'vigil: % rows are immutable once stored', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$
"""

REFUSING_PG = """
CREATE OR REPLACE FUNCTION vigil_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vigil: % rows are immutable once stored', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$
"""

PERMIT = "EXISTS (SELECT 1 FROM destruction_permits)"


def _sqlite_triggers(*, permitted: bool) -> None:
    for table in APPEND_ONLY:
        message = f"vigil: {table} rows are immutable once stored"
        when = f"WHEN NOT {PERMIT} " if permitted else ""
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"{when}BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    columns = [c["name"] for c in sa.inspect(op.get_bind()).get_columns("audit_log")]
    unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in columns if c != "incident_id")
    when = f"WHEN NOT ({PERMIT} AND NEW.incident_id IS NULL AND {unchanged}) "
    message = "vigil: audit_log rows are immutable once stored"
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    op.execute(
        f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE OF {', '.join(columns)} "
        f"ON audit_log {when if permitted else ''}BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def upgrade() -> None:
    op.create_table(
        "retention_holds",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("incident_id", ID, nullable=True),
        sa.Column("paper_record_id", ID, nullable=True),
        sa.Column("reason_ct", sa.LargeBinary(), nullable=False),
        sa.Column("placed_by_id", ID, nullable=False),
        sa.Column("placed_at", WHEN, nullable=False),
        sa.Column("lifted_at", WHEN, nullable=True),
        sa.Column("lifted_by_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_retention_holds_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["lifted_by_id"], ["staff.id"], name=op.f("fk_retention_holds_lifted_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["paper_record_id"],
            ["paper_records.id"],
            name=op.f("fk_retention_holds_paper_record_id_paper_records"),
        ),
        sa.ForeignKeyConstraint(
            ["placed_by_id"], ["staff.id"], name=op.f("fk_retention_holds_placed_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_retention_holds_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_holds")),
    )
    with op.batch_alter_table("retention_holds", schema=None) as batch_op:
        batch_op.create_index("ix_retention_holds_incident", ["incident_id"])
        batch_op.create_index("ix_retention_holds_paper_record", ["paper_record_id"])
    op.create_table(
        "destruction_permits",
        sa.Column("id", ID, nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_permits")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PERMITTED_PG)
    else:
        _sqlite_triggers(permitted=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSING_PG)
    else:
        _sqlite_triggers(permitted=False)
    op.drop_table("destruction_permits")
    with op.batch_alter_table("retention_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_retention_holds_paper_record")
        batch_op.drop_index("ix_retention_holds_incident")
    op.drop_table("retention_holds")
