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

from sqlalchemy import Connection, bindparam, or_, update
from sqlalchemy.orm import Session

from runtime.store.models import Instance, table

# Core statements, built once: these run several times per event, and the ORM's bulk UPDATE
# (which evaluates its WHERE against the session's identity map) costs several times more.
_rows = table(Instance)
_c = _rows.c
_id = bindparam("instance_id", type_=_c.id.type)
_owner = bindparam("owner", type_=_c.lease_owner.type)
_token = bindparam("token", type_=_c.lease_token.type)
_now = bindparam("now_ms", type_=_c.lease_expires_at.type)
_expires = bindparam("expires_at", type_=_c.lease_expires_at.type)

_waiter_ok = or_(
    _c.lease_waiter.is_(None), _c.lease_waiter == _owner, _c.lease_waiter_expires_at < _now
)
_TAKE = (
    update(_rows)
    .where(_c.id == _id, or_(_c.lease_token.is_(None), _c.lease_expires_at < _now), _waiter_ok)
    .values(
        lease_owner=_owner,
        lease_token=_token,
        lease_expires_at=_expires,
        lease_waiter=None,
        lease_waiter_expires_at=None,
    )
)
_STAND_IN_LINE = (
    update(_rows)
    .where(_c.id == _id, _waiter_ok)
    .values(lease_waiter=_owner, lease_waiter_expires_at=_expires)
)
_RENEW = (
    update(_rows).where(_c.id == _id, _c.lease_token == _token).values(lease_expires_at=_expires)
)
_RELEASE = (
    update(_rows)
    .where(_c.id == _id, _c.lease_token == _token)
    .values(lease_owner=None, lease_token=None, lease_expires_at=None)
)


def try_acquire(
    db: Connection | Session,
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
    taken = db.execute(
        _TAKE,
        {
            "instance_id": instance_id,
            "owner": owner,
            "token": token,
            "now_ms": now_ms,
            "expires_at": now_ms + ttl_ms,
        },
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return True
    stand_in_line(db, instance_id, owner=owner, now_ms=now_ms, claim_ms=claim_ms)
    return False


def stand_in_line(
    db: Connection | Session, instance_id: uuid.UUID, *, owner: str, now_ms: int, claim_ms: int
) -> None:
    """Claim the waiter slot (or refresh our claim) unless another process holds it."""
    db.execute(
        _STAND_IN_LINE,
        {
            "instance_id": instance_id,
            "owner": owner,
            "now_ms": now_ms,
            "expires_at": now_ms + claim_ms,
        },
    )


def renew(
    db: Connection | Session, instance_id: uuid.UUID, *, token: str, now_ms: int, ttl_ms: int
) -> bool:
    result = db.execute(
        _RENEW, {"instance_id": instance_id, "token": token, "expires_at": now_ms + ttl_ms}
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release(db: Connection | Session, instance_id: uuid.UUID, *, token: str) -> None:
    db.execute(_RELEASE, {"instance_id": instance_id, "token": token})
