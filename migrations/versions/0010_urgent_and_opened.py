"""urgent concerns and their escalations; alerts opened (not only acknowledged) and chased

`alerts.opened_at` is back-filled from the audit log: the first time each recipient
viewed the incident's page.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "alerts", sa.Column("opened_at", store.models.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "alerts", sa.Column("chased_at", store.models.UTCDateTime(timezone=True), nullable=True)
    )
    # Those who already opened an incident's page have opened its alerts (else every old
    # unopened alert on a restricted category would be chased at once).
    op.execute(
        """
        UPDATE alerts SET opened_at = (
            SELECT MIN(audit_log.at) FROM audit_log
            WHERE audit_log.action = 'incident.view'
              AND audit_log.outcome = 'ok'
              AND audit_log.incident_id = alerts.incident_id
              AND audit_log.actor_id = alerts.recipient_id
        )
        """
    )
    op.create_table(
        "urgent_concerns",
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("on_duty_id", _ID, nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("next_step_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_at", store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_by_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_urgent_concerns_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_urgent_concerns_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["on_duty_id"], ["staff.id"], name=op.f("fk_urgent_concerns_on_duty_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_id"], ["staff.id"], name=op.f("fk_urgent_concerns_opened_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_urgent_concerns")),
    )
    op.create_index(
        "ix_urgent_concerns_waiting",
        "urgent_concerns",
        ["next_step_at"],
        unique=False,
        postgresql_where=sa.text("opened_at IS NULL"),
        sqlite_where=sa.text("opened_at IS NULL"),
    )
    op.create_table(
        "urgent_escalations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["urgent_concerns.incident_id"],
            name=op.f("fk_urgent_escalations_incident_id_urgent_concerns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_urgent_escalations")),
        sa.UniqueConstraint("incident_id", "step", name="uq_urgent_escalations_incident_step"),
    )


def downgrade() -> None:
    op.drop_table("urgent_escalations")
    op.drop_index("ix_urgent_concerns_waiting", table_name="urgent_concerns")
    op.drop_table("urgent_concerns")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("chased_at")
        batch.drop_column("opened_at")
