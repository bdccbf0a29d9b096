"""API keys. The store keeps ciphertext only; sealing and opening happen at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import Key
from runtime.store.pagination import page


def create(
    session: Session,
    *,
    key_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    scopes: list[str],
    sealed_secret: bytes,
    now: datetime,
) -> Key:
    key = Key(
        id=key_id, org_id=org_id, name=name, scopes=scopes, secret=sealed_secret, created_at=now
    )
    session.add(key)
    session.flush()
    return key


def find(session: Session, key_id: uuid.UUID) -> Key | None:
    return session.get(Key, key_id)


def list_page(
    session: Session, org_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[Key], str | None]:
    stmt = select(Key).where(Key.org_id == org_id)
    return page(session, stmt, Key.created_at, Key.id, cursor=cursor, limit=limit)


def delete_one(session: Session, org_id: uuid.UUID, key_id: uuid.UUID) -> None:
    result = session.execute(delete(Key).where(Key.org_id == org_id, Key.id == key_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError("key not found", parameter="keyId")
