"""report stamp indexes: each workspace's newest action, alert and pupil correction

A past term's report is kept in memory and checked against a stamp
(`store.reports.cache`). The stamp holds the newest concern, action, alert and correction
of the report's own workspace (before, of the whole database, so one school's new
concern made every other school's kept reports be counted again). These (workspace_id, id)
indexes answer each with one backward index scan; the newest concern is the workspace's
highest number (`uq_incidents_workspace_number`, already there). Plain CREATE INDEX, like
0004: writes to these three tables wait for it meanwhile.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_incident_actions_workspace_newest", "incident_actions"),
    ("ix_alerts_workspace_newest", "alerts"),
    ("ix_incident_pupil_corrections_workspace_newest", "incident_pupil_corrections"),
)


def _in_the_transaction() -> None:
    """SQLite's driver runs DDL outside any transaction until a write begins one: without
    this a downgrade that an earlier revision's then refuses (0025's, without the data
    key: "Nothing was changed") would have dropped these indexes for good."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("UPDATE alembic_version SET version_num = version_num")


def upgrade() -> None:
    _in_the_transaction()
    # Not in batch mode: on SQLite that could rebuild the table, and with it drop the
    # immutability triggers of incident_actions and incident_pupil_corrections.
    for name, table in INDEXES:
        op.create_index(name, table, ["workspace_id", "id"])


def downgrade() -> None:
    _in_the_transaction()
    for name, table in reversed(INDEXES):
        op.drop_index(name, table_name=table)
