"""Server-wide facts kept in `server_meta`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from runtime.store.models import Meta

SERVER_SECRET = "server_secret"
DEFAULT_ORG = "default_org_id"
DEFAULT_ADMIN_KEY = "default_admin_key_id"


def get(session: Session, name: str) -> str | None:
    return session.scalar(select(Meta.value).where(Meta.name == name))


def put(session: Session, name: str, value: str) -> None:
    row = session.get(Meta, name)
    if row is None:
        session.add(Meta(name=name, value=value))
    else:
        row.value = value


def get_or_create(session: Session, name: str, value: str) -> str:
    """The stored value, or `value` stored now. Safe against concurrent first starts."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(Meta).values(name=name, value=value).on_conflict_do_nothing())
    stored = get(session, name)
    assert stored is not None
    return stored
