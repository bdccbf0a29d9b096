"""Migrations between machine versions, and the version an instance should be upgraded to.

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_migrations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("machine_id", sa.Uuid(), nullable=False),
        sa.Column("from_version_id", sa.Uuid(), nullable=False),
        sa.Column("to_version_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bundle", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["from_version_id"], ["machine_versions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["to_version_id"], ["machine_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_version_migrations_machine",
        "version_migrations",
        ["machine_id", "status", "created_at"],
    )
    # A plain ADD COLUMN (no constraint), so SQLite alters the table in place: rebuilding it
    # would drop the old one, and with foreign keys on that cascades to transitions and timers.
    op.add_column("instances", sa.Column("desired_version_id", sa.Uuid(), nullable=True))
    op.create_index("ix_instances_machine_version", "instances", ["machine_id", "version_id"])
    op.create_index(
        "ix_instances_machine_desired", "instances", ["machine_id", "desired_version_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_instances_machine_desired", table_name="instances")
    op.drop_index("ix_instances_machine_version", table_name="instances")
    op.drop_column("instances", "desired_version_id")  # in place, as it was added
    op.drop_index("ix_version_migrations_machine", table_name="version_migrations")
    op.drop_table("version_migrations")
