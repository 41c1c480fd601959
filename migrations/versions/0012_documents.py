"""documents: files attached to incidents (sealed chunks), scanned paper records, body maps

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Immutable once stored: every column, both events.
IMMUTABLE = {
    "paper_records": "id, workspace_id, pupil_id, recorded_on, description_ct, added_by_id, "
    "created_at",
    "files": "id, workspace_id, token, incident_id, action_id, paper_record_id, kind, size, "
    "chunk_count, key_ct, name_ct, storage, uploaded_by_id, created_at",
    "file_chunks": "file_id, position, data",
    "body_maps": "id, workspace_id, incident_id, author_id, created_at, marks_ct",
}


def upgrade() -> None:
    op.create_table(
        "paper_records",
        sa.Column("id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("pupil_id", Id, nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("description_ct", sa.LargeBinary(), nullable=False),
        sa.Column("added_by_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_paper_records_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["pupil_id"], ["pupils.id"], name=op.f("fk_paper_records_pupil_id_pupils")
        ),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["staff.id"], name=op.f("fk_paper_records_added_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_records")),
    )
    op.create_index("ix_paper_records_pupil", "paper_records", ["pupil_id", "recorded_on"])
    op.create_table(
        "files",
        sa.Column("id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("incident_id", Id, nullable=True),
        sa.Column("action_id", Id, nullable=True),
        sa.Column("paper_record_id", Id, nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("key_ct", sa.LargeBinary(), nullable=False),
        sa.Column("name_ct", sa.LargeBinary(), nullable=False),
        sa.Column("storage", sa.String(length=10), nullable=False),
        sa.Column("uploaded_by_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_files_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_files_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["action_id"], ["incident_actions.id"], name=op.f("fk_files_action_id_incident_actions")
        ),
        sa.ForeignKeyConstraint(
            ["paper_record_id"],
            ["paper_records.id"],
            name=op.f("fk_files_paper_record_id_paper_records"),
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["staff.id"], name=op.f("fk_files_uploaded_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
        sa.UniqueConstraint("token", name=op.f("uq_files_token")),
    )
    op.create_index("ix_files_incident", "files", ["incident_id", "created_at"])
    op.create_index("ix_files_paper_record", "files", ["paper_record_id"])
    op.create_table(
        "file_chunks",
        sa.Column("file_id", Id, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_file_chunks_file_id_files")
        ),
        sa.PrimaryKeyConstraint("file_id", "position", name=op.f("pk_file_chunks")),
    )
    op.create_table(
        "body_maps",
        sa.Column("id", Id, nullable=False),
        sa.Column("workspace_id", Id, nullable=False),
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("author_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marks_ct", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_body_maps_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_body_maps_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff.id"], name=op.f("fk_body_maps_author_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_body_maps")),
    )
    op.create_index("ix_body_maps_incident", "body_maps", ["incident_id", "created_at"])
    dialect = op.get_bind().dialect.name
    for table, columns in IMMUTABLE.items():
        for event, name in ((f"UPDATE OF {columns}", "no_update"), ("DELETE", "no_delete")):
            if dialect == "postgresql":
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


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in IMMUTABLE:
        suffix = f" ON {table}" if dialect == "postgresql" else ""
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update{suffix}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete{suffix}")
    op.drop_index("ix_body_maps_incident", table_name="body_maps")
    op.drop_table("body_maps")
    op.drop_table("file_chunks")
    op.drop_index("ix_files_paper_record", table_name="files")
    op.drop_index("ix_files_incident", table_name="files")
    op.drop_table("files")
    op.drop_index("ix_paper_records_pupil", table_name="paper_records")
    op.drop_table("paper_records")
