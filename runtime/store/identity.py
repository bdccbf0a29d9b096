"""Identity providers and token providers (token exchange's configuration), per org.

Absent `aud`/`iss` are stored as "" so that the unique constraint keys upserts on them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import IdentityProvider, TokenProvider
from runtime.store.pagination import page


@dataclass(frozen=True)
class IdpFields:
    aud: str
    iss: str
    algs: list[str]
    sealed_key: bytes | None
    jwks_url: str | None
    mapping: dict[str, Any]


def list_idps(
    session: Session, org_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[IdentityProvider], str | None]:
    stmt = select(IdentityProvider).where(IdentityProvider.org_id == org_id)
    return page(
        session, stmt, IdentityProvider.created_at, IdentityProvider.id, cursor=cursor, limit=limit
    )


def upsert_idp(session: Session, org_id: uuid.UUID, fields: IdpFields, *, now: datetime) -> None:
    row = _idp(session, org_id, fields.aud, fields.iss, lock=True)
    if row is None:
        row = IdentityProvider(
            id=uuid.uuid4(), org_id=org_id, aud=fields.aud, iss=fields.iss, created_at=now
        )
        session.add(row)
    row.algs = fields.algs
    row.key = fields.sealed_key
    row.jwks_url = fields.jwks_url
    row.mapping = fields.mapping
    session.flush()


def delete_idp(session: Session, org_id: uuid.UUID, aud: str, iss: str) -> None:
    result = session.execute(
        delete(IdentityProvider).where(
            IdentityProvider.org_id == org_id,
            IdentityProvider.aud == aud,
            IdentityProvider.iss == iss,
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError("no identity provider with this aud and iss", parameter="aud")


def matching_idps(
    session: Session, org_id: uuid.UUID, auds: list[str], iss: str | None
) -> list[IdentityProvider]:
    """The org's providers that accept a token with these `aud` values and `iss`: each
    configured field must match (a blank one matches anything). Most specific first."""
    stmt = select(IdentityProvider).where(
        IdentityProvider.org_id == org_id,
        or_(IdentityProvider.aud == "", IdentityProvider.aud.in_(auds)),
        or_(IdentityProvider.iss == "", IdentityProvider.iss == (iss or "")),
    )
    rows = list(session.scalars(stmt.order_by(IdentityProvider.created_at)))
    return sorted(rows, key=lambda row: (row.aud == "") + (row.iss == ""))


def _idp(
    session: Session, org_id: uuid.UUID, aud: str, iss: str, *, lock: bool = False
) -> IdentityProvider | None:
    stmt = select(IdentityProvider).where(
        IdentityProvider.org_id == org_id, IdentityProvider.aud == aud, IdentityProvider.iss == iss
    )
    return session.scalar(stmt.with_for_update() if lock else stmt)


def list_token_providers(
    session: Session, org_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[TokenProvider], str | None]:
    stmt = select(TokenProvider).where(TokenProvider.org_id == org_id)
    return page(
        session, stmt, TokenProvider.created_at, TokenProvider.id, cursor=cursor, limit=limit
    )


def upsert_token_provider(
    session: Session,
    org_id: uuid.UUID,
    service: str,
    key_id: uuid.UUID,
    mapping: dict[str, Any],
    *,
    now: datetime,
) -> None:
    row = session.scalar(
        select(TokenProvider)
        .where(TokenProvider.org_id == org_id, TokenProvider.service == service)
        .with_for_update()
    )
    if row is None:
        row = TokenProvider(id=uuid.uuid4(), org_id=org_id, service=service, created_at=now)
        session.add(row)
    row.key_id = key_id
    row.mapping = mapping
    session.flush()


def find_token_provider(session: Session, org_id: uuid.UUID, service: str) -> TokenProvider | None:
    stmt = select(TokenProvider).where(
        TokenProvider.org_id == org_id, TokenProvider.service == service
    )
    return session.scalar(stmt)


def delete_token_provider(session: Session, org_id: uuid.UUID, service: str) -> None:
    result = session.execute(
        delete(TokenProvider).where(
            TokenProvider.org_id == org_id, TokenProvider.service == service
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFoundError(f"no token provider for service {service!r}", parameter="service")
