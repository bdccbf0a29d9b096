"""Alembic environment, driven programmatically by `Database.migrate` (no alembic.ini).

The caller hands over an open connection in `config.attributes["connection"]`; offline (SQL
script) mode is not supported.
"""

from __future__ import annotations

from alembic import context

from runtime.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through runtime.store.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
