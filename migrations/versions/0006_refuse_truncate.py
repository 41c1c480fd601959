"""append-only tables refuse TRUNCATE (PostgreSQL)

Row triggers refuse UPDATE and DELETE on the incidents, their parts, their actions, the
audit log and the referral events; TRUNCATE fires no row trigger, so a statement trigger
refuses it too. (SQLite has no TRUNCATE.) Whoever must really empty such a table, such
as the test suite, does it with `session_replication_role = replica`, which only a
superuser may set.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# store.models.IMMUTABLE_TABLES when this revision was written.
APPEND_ONLY = (
    "incidents",
    "incident_pupils",
    "incident_categories",
    "incident_agencies",
    "incident_actions",
    "audit_log",
    "referral_events",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION vigil_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'vigil: % is append-only: TRUNCATE is refused', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_truncate()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS vigil_refuse_truncate()")
