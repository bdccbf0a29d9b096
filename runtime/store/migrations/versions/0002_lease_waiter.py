"""Instances: the lease waiter slot (fair turns between server processes).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("lease_waiter", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_waiter_expires_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("lease_waiter_expires_at")
        batch.drop_column("lease_waiter")
