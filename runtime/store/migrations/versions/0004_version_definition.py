"""Machine versions: the machine's definition (the dashboard's chart), extracted at finalize.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# Plain ADD and DROP COLUMN, never a batch rebuild: on SQLite a rebuild drops the old table,
# which foreign keys refuse (or, with cascades, would empty the instances of every version).
def upgrade() -> None:
    op.add_column("machine_versions", sa.Column("definition", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("machine_versions", "definition")
