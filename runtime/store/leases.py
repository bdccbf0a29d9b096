"""The DB lease that serializes steps of one instance across server processes.

A lease is (owner, random token, expiry in epoch ms) on the instance row, taken with a
compare-and-set UPDATE and renewed while the step runs. Commits are fenced by the token (see
`commits.commit`), so correctness never depends on clocks: an expired lease can be taken
over, and the old holder's next commit is then refused. Clocks only decide *when* a crashed
holder's lease can be taken over (after `ttl`), so keep server clocks roughly in sync.

Fairness between processes: a process that fails to take the lease claims the single waiter
slot (`lease_waiter`, refreshed by each of its polls, forgotten `claim_ms` after its last one).
While another process holds that claim, nobody else may take the lease, so a process that
keeps a steady queue of local steps cannot starve the others: the lease alternates.

Most steps never write a lease at all: `peek` reads the instance (no write, no writer lock) and
says whether its lease is free; the step then runs on that reading, and its first commit takes
the lease only if it is not also its last, in a compare-and-set on the sequence number the
reading saw (`commits.commit_unleased`). A step that loses that race wrote nothing, and runs
again holding the lease. `take` is that pessimistic path: one UPDATE ... RETURNING finds the
instance by name (or id), takes its lease and returns the row as it is now, after the previous
holder's last commit. Every statement here is `Prepared` (see `prepared.py`) and stands alone:
no transaction needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update

from runtime.errors import NotFoundError
from runtime.store.models import Instance, Machine, table
from runtime.store.prepared import Prepared, RawTransaction

_rows = table(Instance)
_c = _rows.c
_id = bindparam("instance_id", type_=_c.id.type)
_owner = bindparam("owner", type_=_c.lease_owner.type)
_token = bindparam("token", type_=_c.lease_token.type)
_now = bindparam("now_ms", type_=_c.lease_expires_at.type)
_expires = bindparam("expires_at", type_=_c.lease_expires_at.type)
_free = or_(_c.lease_token.is_(None), _c.lease_expires_at < _now)
_waiter_ok = or_(
    _c.lease_waiter.is_(None), _c.lease_waiter == _owner, _c.lease_waiter_expires_at < _now
)

# Whether `owner` may take the lease at `now_ms` (bind parameters): free, and nobody else in line.
CLAIMABLE = and_(_free, _waiter_ok)
# What taking the lease writes (`expires_at` bound), clearing the line it may have stood in.
TAKEN = {
    "lease_owner": _owner,
    "lease_token": _token,
    "lease_expires_at": _expires,
    "lease_waiter": None,
    "lease_waiter_expires_at": None,
}

_machines = table(Machine).c
_machine_id = select(_machines.id).where(
    _machines.org_id == bindparam("org_id", type_=_machines.org_id.type),
    _machines.slug == bindparam("machine_slug", type_=_machines.slug.type),
)
_BY = {
    "name": (
        _c.machine_id == _machine_id.scalar_subquery(),
        _c.slug == bindparam("instance_slug", type_=_c.slug.type),
    ),
    "id": (_c.id == _id,),
}
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
    _c.desired_version_id,
    _c.parent,
)
_TAKE = {
    by: Prepared(
        update(_rows).where(*where, CLAIMABLE).values(**TAKEN).returning(*_READ),
        returns=_READ,
    )
    for by, where in _BY.items()
}
_PEEK = {
    by: Prepared(select(*_READ).where(*where, CLAIMABLE), returns=_READ)
    for by, where in _BY.items()
}
_FIND = {by: Prepared(select(_c.id).where(*where), returns=[_c.id]) for by, where in _BY.items()}
_MACHINE_EXISTS = Prepared(_machine_id, returns=[_machines.id])
_STAND_IN_LINE = Prepared(
    update(_rows)
    .where(_c.id == _id, _waiter_ok)
    .values(lease_waiter=_owner, lease_waiter_expires_at=_expires)
)
_RENEW = Prepared(
    update(_rows).where(_c.id == _id, _c.lease_token == _token).values(lease_expires_at=_expires)
)
_RELEASE = Prepared(
    update(_rows)
    .where(_c.id == _id, _c.lease_token == _token)
    .values(lease_owner=None, lease_token=None, lease_expires_at=None)
)


@dataclass(frozen=True)
class Lease:
    """A lease: the instance and the token its writes are fenced by. `claimed`: the row
    carried the token before the step began (`take`); otherwise the step's first commit
    claims it, on the sequence number the step read (`peek`)."""

    instance_id: uuid.UUID
    token: str
    claimed: bool = True


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
    """An instance as a step found it: when its lease was taken (nobody else can change it
    now), or when it was seen free (`peek`: a commit made meanwhile fails the step's first)."""

    id: uuid.UUID
    slug: str
    version_id: uuid.UUID
    status: str
    state_json: str
    seq: int
    ts: int
    view: dict[str, Any]
    cut_off: list[str]
    # An upgrade pending (runtime/instances/upgrades.py): the version to move to first.
    desired_version_id: uuid.UUID | None = None
    # A persistent child's parent (store/models.py `Instance.parent`).
    parent: dict[str, Any] | None = None


def take(
    tx: RawTransaction,
    target: Target,
    *,
    owner: str,
    token: str,
    now_ms: int,
    ttl_ms: int,
    claim_ms: int = 1000,
) -> Current | None:
    """Take the lease of `target` if it is free and no other process is first in line, and
    read the instance (one statement). Otherwise None, standing in line (claiming the waiter
    slot if it is free). NotFoundError if there is no such instance."""
    lease = {"owner": owner, "token": token, "now_ms": now_ms, "expires_at": now_ms + ttl_ms}
    row = tx.first(_TAKE[target.by], {**target.params, **lease})
    if row is not None:
        return Current(*row)
    found = tx.first(_FIND[target.by], target.params)
    if found is None:
        raise _not_found(tx, target)
    stand_in_line(tx, found[0], owner=owner, now_ms=now_ms, claim_ms=claim_ms)
    return None


def peek(tx: RawTransaction, target: Target, *, owner: str, now_ms: int) -> Current | None:
    """Read `target` if its lease is free and no other process is first in line (a step may
    then run without taking it, see the module docstring); None otherwise, or if there is no
    such instance (`take` then says which)."""
    row = tx.first(_PEEK[target.by], {**target.params, "owner": owner, "now_ms": now_ms})
    return None if row is None else Current(*row)


def stand_in_line(
    tx: RawTransaction, instance_id: uuid.UUID, *, owner: str, now_ms: int, claim_ms: int
) -> None:
    """Claim the waiter slot (or refresh our claim) unless another process holds it."""
    params = {"owner": owner, "now_ms": now_ms, "expires_at": now_ms + claim_ms}
    tx.execute(_STAND_IN_LINE, {"instance_id": instance_id, **params})


def renew(
    tx: RawTransaction, leases: Collection[Lease], *, now_ms: int, ttl_ms: int
) -> list[Lease]:
    """Extend held leases; those still ours (a lost one needs no action here: its holder's
    next fenced commit is refused)."""
    expires = now_ms + ttl_ms
    return [
        lease
        for lease in leases
        if tx.execute(
            _RENEW, {"instance_id": lease.instance_id, "token": lease.token, "expires_at": expires}
        )
    ]


def release(tx: RawTransaction, lease: Lease) -> None:
    tx.execute(_RELEASE, {"instance_id": lease.instance_id, "token": lease.token})


def _not_found(tx: RawTransaction, target: Target) -> NotFoundError:
    params = target.params
    if target.by == "name" and tx.first(_MACHINE_EXISTS, params) is None:
        return NotFoundError(
            f"machine {params['machine_slug']!r} not found", parameter="machineName"
        )
    name = params.get("instance_slug")
    message = f"instance {name!r} not found" if name else "instance not found"
    return NotFoundError(message, parameter="instanceName")
