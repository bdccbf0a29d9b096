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

`take` is the hot path: one UPDATE ... RETURNING finds the instance by name (or id), takes its
lease and returns the row as it is now, after the previous holder's last commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import Instance, Machine, table

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
_machines = table(Machine).c
_org = bindparam("org_id", type_=_machines.org_id.type)
_machine = bindparam("machine_slug", type_=_machines.slug.type)
_slug = bindparam("instance_slug", type_=_c.slug.type)
_machine_id = select(_machines.id).where(_machines.org_id == _org, _machines.slug == _machine)
_BY_NAME = (_c.machine_id == _machine_id.scalar_subquery(), _c.slug == _slug)
_BY_ID = (_c.id == _id,)
_READ = (
    _c.id,
    _c.slug,
    _c.version_id,
    _c.status,
    _c.state_json,
    _c.seq,
    _c.ts,
    _c.view,
    _c.cut_off,
)
_TAKE_BY = {
    by: (
        update(_rows)
        .where(*where, or_(_c.lease_token.is_(None), _c.lease_expires_at < _now), _waiter_ok)
        .values(
            lease_owner=_owner,
            lease_token=_token,
            lease_expires_at=_expires,
            lease_waiter=None,
            lease_waiter_expires_at=None,
        )
        .returning(*_READ)
    )
    for by, where in (("name", _BY_NAME), ("id", _BY_ID))
}
_FIND_BY = {by: select(_c.id).where(*where) for by, where in (("name", _BY_NAME), ("id", _BY_ID))}
_MACHINE_EXISTS = _machine_id


@dataclass(frozen=True)
class Target:
    """The instance a step is for: by name (as a request names it) or by id."""

    by: str
    params: dict[str, Any]

    @classmethod
    def named(cls, org_id: uuid.UUID, machine: str, slug: str) -> Target:
        return cls("name", {"org_id": org_id, "machine_slug": machine, "instance_slug": slug})

    @classmethod
    def with_id(cls, instance_id: uuid.UUID) -> Target:
        return cls("id", {"instance_id": instance_id})


@dataclass(frozen=True)
class Current:
    """An instance as it was when the lease was taken: nobody else can change it now."""

    id: uuid.UUID
    slug: str
    version_id: uuid.UUID
    status: str
    state_json: str
    seq: int
    ts: int
    view: dict[str, Any]
    cut_off: list[str]


def take(
    db: Connection,
    target: Target,
    *,
    owner: str,
    token: str,
    now_ms: int,
    ttl_ms: int,
    claim_ms: int = 1000,
) -> Current | None:
    """Take the lease of `target` and read the instance (one statement); None if it is held
    (then stand in line, as `try_acquire` does). NotFoundError if there is no such instance."""
    lease = {"owner": owner, "token": token, "now_ms": now_ms, "expires_at": now_ms + ttl_ms}
    row = db.execute(_TAKE_BY[target.by], {**target.params, **lease}).first()
    if row is not None:
        return Current(*row)
    instance_id = db.execute(_FIND_BY[target.by], target.params).scalar()
    if instance_id is None:
        raise _not_found(db, target)
    stand_in_line(db, instance_id, owner=owner, now_ms=now_ms, claim_ms=claim_ms)
    return None


def _not_found(db: Connection, target: Target) -> NotFoundError:
    params = target.params
    if target.by == "name" and db.execute(_MACHINE_EXISTS, params).first() is None:
        return NotFoundError(
            f"machine {params['machine_slug']!r} not found", parameter="machineName"
        )
    name = params.get("instance_slug", "")
    return NotFoundError(
        f"instance {name!r} not found" if name else "instance not found", parameter="instanceName"
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
