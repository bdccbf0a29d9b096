"""Realtime: `state_changes`, every state written to an instance row, logged by a trigger in
the writing transaction and kept a short while for other processes' subscribers; on
PostgreSQL the trigger also notifies their listeners.

The log is written by the database, not by the commit code: whoever writes an instance's state
(a step's commit, a creation, a future migration of instances) logs it, in the same
transaction, at no extra round trip. SQLite drops a table's triggers with the table, and a
batch migration of `instances` recreates it: such a migration must create these triggers again
(the server checks they exist when it starts: runtime/realtime/changelog.py).

An upgrade switches the instance's version after it wrote the upgraded state, in the same
transaction (runtime/store/commits.py): a third trigger gives that state's log row the new
version, so other processes authorize it with the version it belongs to.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
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
# The version switch of an upgrade (an UPDATE that leaves `seq` as it is): the state just
# logged at that `seq` is the new version's. It was logged earlier in this transaction, so it
# is among the newest rows: found walking the primary key down (the log has no other index).
_SQLITE_SWITCH = """
CREATE TRIGGER instances_log_version AFTER UPDATE OF version_id ON instances
WHEN NEW.version_id <> OLD.version_id AND NEW.seq = OLD.seq
BEGIN
  UPDATE state_changes SET version_id = NEW.version_id WHERE id = (
    SELECT id FROM state_changes WHERE instance_id = NEW.id AND seq = NEW.seq
    ORDER BY id DESC LIMIT 1);
END
"""
_POSTGRES_SWITCH = """
CREATE FUNCTION backstate_log_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE state_changes SET version_id = NEW.version_id WHERE id = (
    SELECT id FROM state_changes WHERE instance_id = NEW.id AND seq = NEW.seq
    ORDER BY id DESC LIMIT 1);
  RETURN NULL;
END $$
"""
TRIGGERS = ("instances_log_insert", "instances_log_update", "instances_log_version")


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
        op.execute(_POSTGRES_SWITCH)
        op.execute("CREATE TRIGGER instances_log_version AFTER UPDATE OF version_id ON instances "
                   "FOR EACH ROW WHEN (NEW.version_id <> OLD.version_id AND NEW.seq = OLD.seq) "
                   "EXECUTE FUNCTION backstate_log_version()")
    else:
        op.execute(_SQLITE_LOG.format(name="instances_log_insert", event="INSERT", when=""))
        op.execute(_SQLITE_LOG.format(name="instances_log_update", event="UPDATE OF seq",
                                      when="WHEN NEW.seq <> OLD.seq"))
        op.execute(_SQLITE_SWITCH)


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (
            " ON instances" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION backstate_log_state()")
        op.execute("DROP FUNCTION backstate_log_version()")
    op.drop_table("state_changes")
