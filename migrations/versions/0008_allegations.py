"""incident_adults: the adult an allegation is about (immutable, like the incident)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "incident_adults"
COLUMNS = "incident_id, kind, staff_id, name_ct"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name_ct", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_adults_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_incident_adults_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_adults")),
    )
    op.create_index(op.f("ix_incident_adults_staff_id"), TABLE, ["staff_id"], unique=False)
    # Immutable like the incident it belongs to (0001's triggers, 0006's TRUNCATE guard).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE OF {COLUMNS} ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION vigil_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vigil_refuse_truncate()"
        )
    else:
        message = f"vigil: {TABLE} rows are immutable once stored"
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE OF {COLUMNS} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for trigger in ("no_update", "no_delete", "no_truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{trigger}{f' ON {TABLE}' if postgres else ''}")
    op.drop_index(op.f("ix_incident_adults_staff_id"), table_name=TABLE)
    op.drop_table(TABLE)
