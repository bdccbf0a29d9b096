"""Keyset pagination over (created_at, id), with an opaque cursor."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from runtime.errors import InvalidRequestError

T = TypeVar("T")


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, hexid = raw.split("|")
        return datetime.fromisoformat(when), uuid.UUID(hex=hexid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError("cursor is not valid", parameter="cursor") from exc


def page(
    session: Session,
    stmt: Select[T],
    created_at: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[T], str | None]:
    """Rows of `stmt` after `cursor`, oldest first, and the cursor of the next page if any."""
    if cursor:
        when, after = decode_cursor(cursor)
        stmt = stmt.where(or_(created_at > when, and_(created_at == when, row_id > after)))
    rows = list(session.scalars(stmt.order_by(created_at, row_id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(getattr(last, "created_at"), getattr(last, "id"))  # noqa: B009
