"""Persistent children and messages between instances: a timer row may be an outbox entry
(`timers.delivery`), and a child instance knows its parent (`instances.parent`).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no constraint), so SQLite alters the tables in place: rebuilding
    # `instances` would cascade its deletion to transitions and timers.
    op.add_column("timers", sa.Column("delivery", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("instances", sa.Column("parent", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    # Outbox rows cannot be delivered by a server that does not know them.
    op.execute("DELETE FROM timers WHERE delivery IS NOT NULL")
    op.drop_column("instances", "parent")
    op.drop_column("timers", "delivery")
