"""report indexes: incidents by when they happened, alerts by when they were sent, and
the (few) actions that re-categorised an incident

The reports (`store.reports`) count a term's incidents and alerts; without these they
would read every incident and alert the school ever recorded. Plain CREATE INDEX: on a
school's database it takes well under a second (writes wait for it meanwhile).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode: on SQLite that could rebuild the table, and with it drop the
    # immutability triggers of incidents and incident_actions.
    op.create_index("ix_incidents_workspace_happened", "incidents", ["workspace_id", "happened_at"])
    op.create_index("ix_alerts_workspace_created", "alerts", ["workspace_id", "created_at"])
    op.create_index(
        "ix_incident_actions_recategorised",
        "incident_actions",
        ["incident_id"],
        postgresql_where=sa.text("categories IS NOT NULL"),
        sqlite_where=sa.text("categories IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_incident_actions_recategorised", table_name="incident_actions")
    op.drop_index("ix_alerts_workspace_created", table_name="alerts")
    op.drop_index("ix_incidents_workspace_happened", table_name="incidents")
