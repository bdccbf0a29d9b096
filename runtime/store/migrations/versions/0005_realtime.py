"""Realtime: `state_changes`, every state written to an instance row, logged by a trigger in
the writing transaction and kept a short while for other processes' subscribers; on
PostgreSQL the trigger also notifies their listeners.

The log is written by the database, not by the commit code: whoever writes an instance's state
(a step's commit, a creation, a future migration of instances) logs it, in the same
transaction, at no extra round trip. SQLite drops a table's triggers with the table, and a
batch migration of `instances` recreates it: such a migration must create these triggers again
(the server checks they exist when it starts: runtime/realtime/changelog.py).

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

_SQLITE_LOG = """
CREATE TRIGGER {name} AFTER {event} ON instances {when}
BEGIN
  INSERT INTO state_changes (instance_id, seq, ts, version_id, view, state_json)
  VALUES (NEW.id, NEW.seq, NEW.ts, NEW.version_id, NEW.view, NEW.state_json);
END
"""
# The notification channel is per schema (several deployments, or test runs, may share one
# database) and must stay under PostgreSQL's 63-byte limit whatever the schema's name:
# runtime/realtime/postgres.py derives the same name.
_POSTGRES_LOG = """
CREATE FUNCTION backstate_log_state() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  logged bigint;
BEGIN
  INSERT INTO state_changes (instance_id, seq, ts, version_id, view, state_json)
  VALUES (NEW.id, NEW.seq, NEW.ts, NEW.version_id, NEW.view::text, NEW.state_json)
  RETURNING id INTO logged;
  PERFORM pg_notify('backstate_' || left(md5(TG_TABLE_SCHEMA), 16),
                    logged || ' ' || NEW.id || ' ' || NEW.seq);
  RETURN NULL;
END $$
"""
TRIGGERS = ("instances_log_insert", "instances_log_update")


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
        op.execute(_POSTGRES_LOG)
        op.execute("CREATE TRIGGER instances_log_insert AFTER INSERT ON instances "
                   "FOR EACH ROW EXECUTE FUNCTION backstate_log_state()")
        op.execute("CREATE TRIGGER instances_log_update AFTER UPDATE OF seq ON instances "
                   "FOR EACH ROW WHEN (NEW.seq <> OLD.seq) EXECUTE FUNCTION backstate_log_state()")
    else:
        op.execute(_SQLITE_LOG.format(name="instances_log_insert", event="INSERT", when=""))
        op.execute(_SQLITE_LOG.format(name="instances_log_update", event="UPDATE OF seq",
                                      when="WHEN NEW.seq <> OLD.seq"))


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (
            " ON instances" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION backstate_log_state()")
    op.drop_table("state_changes")
