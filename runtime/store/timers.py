"""Claiming and settling durable timers.

A timer row is written by the macrostep that armed it (see `commits._record`). Delivering it
is a three-part protocol that keeps "each timer fires once" through crashes and across
processes:

1. **claim**: a scheduler marks due rows with a claim id unique to this claim and an expiry
   (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite writers are serialized, and the UPDATE
   re-checks that the row is still unclaimed). A claim need not be synced to disk: one a power
   loss undoes only frees its timers sooner, and their consumption is fenced anyway;
2. **consume**: the row is deleted *in the transaction of the first macrostep the delivery
   commits*, fenced by the claim id. A crash before that commit leaves the row to be claimed
   again when the claim expires; a crash after it leaves nothing to deliver twice. A row that
   was re-armed or cancelled meanwhile no longer carries the claim, so a stale delivery writes
   nothing;
3. **retry** or **drop**: a failed delivery puts the row back with `attempts + 1` and a later
   due time, or drops it after the last attempt.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from runtime.store.models import Instance, Machine, Timer, table
from runtime.store.prepared import Prepared, RawTransaction


@dataclass(frozen=True)
class Claimed:
    """A due timer this process now holds the right to deliver, with the names its delivery
    serializes on (org, machine and instance), read in the same query as the claim."""

    id: int
    instance_id: uuid.UUID
    send_id: str
    event: dict[str, Any]
    due_at_ms: int
    attempts: int
    claim: str
    org_id: uuid.UUID | None = None
    machine: str = ""
    instance: str = ""
    delivery: dict[str, Any] | None = None   # an outbox entry (runtime/instances/outbox.py)


_timers = table(Timer)
_t = _timers.c
_CLAIMABLE = and_(_t.due_at_ms <= bindparam("now_ms"),
                  or_(_t.claimed_by.is_(None), _t.claim_expires_at < bindparam("now_ms")))


def _claim(dialect: Dialect) -> ClauseElement:
    due = select(_t.id).where(_CLAIMABLE).order_by(_t.due_at_ms).limit(bindparam("limit"))
    if dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (update(_timers).where(_t.id.in_(due.scalar_subquery()), _CLAIMABLE)
            .values(claimed_by=bindparam("claim"), claim_expires_at=bindparam("expires_at")))


_CLAIM = Prepared(_claim)
_m, _i = table(Machine).c, table(Instance).c
_CLAIMED_COLUMNS = (_t.id, _t.instance_id, _t.send_id, _t.event, _t.due_at_ms, _t.attempts,
                    _m.org_id, _m.slug, _i.slug, _t.delivery)
_CLAIMED = Prepared(
    select(*_CLAIMED_COLUMNS)
    .join(table(Instance), _i.id == _t.instance_id)
    .join(table(Machine), _m.id == _i.machine_id)
    .where(_t.claimed_by == bindparam("claim"))
    .order_by(_t.due_at_ms, _t.id),
    returns=_CLAIMED_COLUMNS,
)


_NEXT_UNCLAIMED = Prepared(
    select(_t.due_at_ms).where(_t.claimed_by.is_(None)).order_by(_t.due_at_ms).limit(1),
    returns=[_t.due_at_ms])
# Only due timers are ever claimed (and re-arming one clears its claim), so the claimed rows are
# among the due ones: the due-time index finds them.
_NEXT_EXPIRY = Prepared(
    select(func.min(_t.claim_expires_at))
    .where(_t.due_at_ms <= bindparam("now_ms"), _t.claimed_by.is_not(None)),
    returns=[_t.claim_expires_at])


@dataclass(frozen=True)
class Claims:
    timers: list[Claimed]   # in due order
    next_due_ms: int | None   # when a timer next becomes claimable (`earliest_due`)


def claim_due(tx: RawTransaction, *, now_ms: int, owner: str, claim_ms: int,
              limit: int) -> Claims:
    """Claim up to `limit` timers due at `now_ms`, the earliest first; and when to look next."""
    claim = f"{owner}:{secrets.token_hex(6)}"
    params = {"now_ms": now_ms, "limit": limit, "claim": claim,
              "expires_at": now_ms + claim_ms}
    timers = []
    if tx.execute(_CLAIM, params):
        timers = [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], claim, r[6], r[7], r[8], r[9])
                  for r in tx.all(_CLAIMED, {"claim": claim})]
    return Claims(timers, earliest_due(tx, now_ms))


def earliest_due(tx: RawTransaction, now_ms: int) -> int | None:
    """When a timer next becomes claimable: the earliest due time of the unclaimed ones, or
    just after the earliest expiry of a claim (a claim whose process died). A claimed timer's
    own due time, past already, says nothing of when to look again: counting it made every
    scheduler look again at once, in a loop, for as long as any due timer stayed claimed (a
    delivery waiting for its instance, another process's deliveries)."""
    unclaimed = tx.first(_NEXT_UNCLAIMED, {})
    expiry = tx.first(_NEXT_EXPIRY, {"now_ms": now_ms})
    times = [None if unclaimed is None else unclaimed[0],
             None if expiry is None or expiry[0] is None else expiry[0] + 1]
    return min((t for t in times if t is not None), default=None)


def consume(session: Session, timer: Claimed) -> bool:
    """Delete the delivered row; False if it was re-armed, cancelled or re-claimed."""
    result = session.execute(delete(Timer).where(Timer.id == timer.id,
                                                 Timer.claimed_by == timer.claim))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry(session: Session, timer: Claimed, *, due_at_ms: int) -> None:
    session.execute(
        update(Timer)
        .where(Timer.id == timer.id, Timer.claimed_by == timer.claim)
        .values(attempts=timer.attempts + 1, due_at_ms=due_at_ms, claimed_by=None,
                claim_expires_at=None)
    )
