"""Identity: anonymous access per org, keys that administer other orgs, identity providers and
token providers.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite: other tables' foreign keys point at orgs).
    op.add_column(
        "orgs",
        sa.Column("allow_anonymous", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column("orgs", sa.Column("anonymous_key_id", sa.Uuid(), nullable=True))

    op.create_table(
        "org_admin_keys",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_id", "key_id"),
    )
    op.create_index("ix_org_admin_keys_key", "org_admin_keys", ["key_id"])

    op.create_table(
        "identity_providers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("aud", sa.String(length=1024), nullable=False),
        sa.Column("iss", sa.String(length=1024), nullable=False),
        sa.Column("algs", sa.JSON(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("jwks_url", sa.Text(), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "aud", "iss", name="uq_identity_providers_org"),
    )
    op.create_table(
        "token_providers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "service", name="uq_token_providers_org"),
    )


def downgrade() -> None:
    op.drop_table("token_providers")
    op.drop_table("identity_providers")
    op.drop_index("ix_org_admin_keys_key", table_name="org_admin_keys")
    op.drop_table("org_admin_keys")
    # Plain DROP COLUMNs too: a batch rebuild of orgs on SQLite would drop the table, and with
    # foreign keys on, that cascades to every key, machine and instance.
    op.drop_column("orgs", "anonymous_key_id")
    op.drop_column("orgs", "allow_anonymous")
