"""The DB lease that serializes steps of one instance across server processes.

A lease is (owner, random token, expiry in epoch ms) on the instance row, taken with a
compare-and-set UPDATE and renewed while the step runs. Commits are fenced by the token (see
`instances.commit`), so correctness never depends on clocks: an expired lease can be taken
over, and the old holder's next commit is then refused. Clocks only decide *when* a crashed
holder's lease can be taken over (after `ttl`), so keep server clocks roughly in sync.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from runtime.store.models import Instance


def try_acquire(
    session: Session, instance_id: uuid.UUID, *, owner: str, token: str, now_ms: int, ttl_ms: int
) -> bool:
    result = session.execute(
        update(Instance)
        .where(
            Instance.id == instance_id,
            or_(Instance.lease_token.is_(None), Instance.lease_expires_at < now_ms),
        )
        .values(lease_owner=owner, lease_token=token, lease_expires_at=now_ms + ttl_ms)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def renew(
    session: Session, instance_id: uuid.UUID, *, token: str, now_ms: int, ttl_ms: int
) -> bool:
    result = session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.lease_token == token)
        .values(lease_expires_at=now_ms + ttl_ms)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release(session: Session, instance_id: uuid.UUID, *, token: str) -> None:
    session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.lease_token == token)
        .values(lease_owner=None, lease_token=None, lease_expires_at=None)
    )
