"""Organizations, the keys that administer orgs other than their own, and each org's
anonymous-access switch."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import Org, OrgAdminKey


def create(session: Session, name: str, *, now: datetime, allow_anonymous: bool = True) -> Org:
    org = Org(
        id=uuid.uuid4(), name=name, created_at=now, allow_anonymous=allow_anonymous,
        anonymous_key_id=None,
    )  # fmt: skip
    session.add(org)
    session.flush()
    return org


def get(session: Session, org_id: uuid.UUID) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        raise NotFoundError("organization not found", parameter="orgId")
    return org


def list_by_ids(session: Session, ids: list[uuid.UUID]) -> list[Org]:
    return list(session.scalars(select(Org).where(Org.id.in_(ids)).order_by(Org.created_at)))


def add_admin_key(session: Session, org_id: uuid.UUID, key_id: uuid.UUID, *, now: datetime) -> None:
    session.add(OrgAdminKey(org_id=org_id, key_id=key_id, created_at=now))
    session.flush()


def administered_by(session: Session, key_id: uuid.UUID) -> list[uuid.UUID]:
    """The orgs, besides its own, that `key_id` may act in."""
    stmt = select(OrgAdminKey.org_id).where(OrgAdminKey.key_id == key_id)
    return list(session.scalars(stmt.order_by(OrgAdminKey.created_at)))


def set_anonymous(session: Session, org_id: uuid.UUID, allowed: bool) -> uuid.UUID | None:
    """Switch anonymous access; switching it off also forgets the anonymous key, whose id is
    returned (the caller deletes it, so that the tokens it signed stop working)."""
    org = get(session, org_id)
    dropped = None if allowed else org.anonymous_key_id
    org.allow_anonymous = allowed
    if not allowed:
        org.anonymous_key_id = None
    session.flush()
    return dropped


def claim_anonymous_key(
    session: Session, org_id: uuid.UUID, key_id: uuid.UUID, *, replacing: uuid.UUID | None
) -> bool:
    """Make `key_id` the org's anonymous key if it still has `replacing` (none, or a key that
    no longer exists) and still allows anonymous access: False if another request won."""
    stmt = update(Org).where(Org.id == org_id, Org.allow_anonymous.is_(True))
    if replacing is None:
        stmt = stmt.where(Org.anonymous_key_id.is_(None))
    else:
        stmt = stmt.where(Org.anonymous_key_id == replacing)
    result = session.execute(stmt.values(anonymous_key_id=key_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
