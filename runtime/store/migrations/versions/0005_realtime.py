"""Realtime: `state_changes`, every committed state kept a short while for other processes'
subscribers, and on PostgreSQL a trigger that notifies their listeners.

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

# The channel is per schema (several deployments, or test runs, may share one database) and
# must stay under PostgreSQL's 63-byte limit whatever the schema's name: runtime/realtime/
# postgres.py derives the same name.
_NOTIFY = """
CREATE FUNCTION backstate_state_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('backstate_' || left(md5(TG_TABLE_SCHEMA), 16),
                    NEW.id || ' ' || NEW.instance_id || ' ' || NEW.seq);
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "state_changes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("view", sa.Text(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )  # fmt: skip
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY)
        op.execute(
            "CREATE TRIGGER state_changes_notify AFTER INSERT ON state_changes "
            "FOR EACH ROW EXECUTE FUNCTION backstate_state_committed()"
        )


def downgrade() -> None:
    op.drop_table("state_changes")  # its trigger goes with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION backstate_state_committed()")
