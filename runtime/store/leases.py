"""The DB lease that serializes steps of one instance across server processes.

A lease is (owner, random token, expiry in epoch ms) on the instance row, taken with a
compare-and-set UPDATE and renewed while the step runs. Commits are fenced by the token (see
`instances.commit`), so correctness never depends on clocks: an expired lease can be taken
over, and the old holder's next commit is then refused. Clocks only decide *when* a crashed
holder's lease can be taken over (after `ttl`), so keep server clocks roughly in sync.

Fairness between processes: a process that fails to take the lease claims the single waiter
slot (`lease_waiter`, refreshed by each of its polls, forgotten `claim_ms` after its last one).
While another process holds that claim, nobody else may take the lease, so a process that
keeps a steady queue of local steps cannot starve the others: the lease alternates.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from runtime.store.models import Instance


def try_acquire(
    session: Session,
    instance_id: uuid.UUID,
    *,
    owner: str,
    token: str,
    now_ms: int,
    ttl_ms: int,
    claim_ms: int = 1000,
) -> bool:
    """Take the lease if it is free and no other process is first in line; otherwise stand in
    line (claim the waiter slot if it is free)."""
    waiter_ok = or_(
        Instance.lease_waiter.is_(None),
        Instance.lease_waiter == owner,
        Instance.lease_waiter_expires_at < now_ms,
    )
    result = session.execute(
        update(Instance)
        .where(
            Instance.id == instance_id,
            or_(Instance.lease_token.is_(None), Instance.lease_expires_at < now_ms),
            waiter_ok,
        )
        .values(
            lease_owner=owner,
            lease_token=token,
            lease_expires_at=now_ms + ttl_ms,
            lease_waiter=None,
            lease_waiter_expires_at=None,
        )
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    session.execute(
        update(Instance)
        .where(Instance.id == instance_id, waiter_ok)
        .values(lease_waiter=owner, lease_waiter_expires_at=now_ms + claim_ms)
    )
    return False


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
