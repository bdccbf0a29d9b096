"""Persistence: SQLAlchemy models, Alembic migrations and the queries the server runs.

Modules are grouped by what they own (`orgs`, `keys`, `machines`, `versions`, `instances`,
`leases`, `meta`); each function takes a `Session` from `Database.transaction()`.
"""

from runtime.store.db import Database

__all__ = ["Database"]
