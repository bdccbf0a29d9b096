"""Organizations."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import Org


def create(session: Session, name: str, *, now: datetime) -> Org:
    org = Org(id=uuid.uuid4(), name=name, created_at=now)
    session.add(org)
    session.flush()
    return org


def get(session: Session, org_id: uuid.UUID) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        raise NotFoundError("organization not found", parameter="orgId")
    return org
