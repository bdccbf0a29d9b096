"""The writes of a step: each macrostep's state, transition and timer changes, together.

Each function writes one macrostep — its new state, its transition row and its timer changes —
inside a transaction the caller holds. Each checks its condition first (a fence, a
compare-and-set, a name not taken, a timer still claimed) and, when that fails, raises a
ConflictError having written nothing and leaving the transaction usable: several steps' writes
can share one transaction and one sync (runtime/instances/committer.py). `commit` is fenced: it
only updates the row while the caller's lease token is still the instance's, so a step that lost
its lease (expired, instance deleted) can never overwrite someone else's work. `commit_unleased`
is the first commit of a step that ran without taking the lease (see `leases.peek`): a
compare-and-set on the sequence number the step read, which takes the lease for the step's later
commits unless it is also its last.

Timers are keyed by (instance, send_id). Re-arming an id that is still pending *replaces* it
(new event and due time, attempts reset): last write wins, so an id names at most one pending
delivery and a `cancel(id)` always leaves none. Cancels of a macrostep are applied before its
new timers; a macrostep that reaches the machine's final state first drops them all.

These run once or more per event, so they are `Prepared` statements (see `prepared.py`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ClauseElement

from runtime.errors import ConflictError, InstanceChangedError, NotFoundError
from runtime.results import Macrostep
from runtime.results import Timer as ArmedTimer
from runtime.store.instances import RUNNING
from runtime.store.leases import CLAIMABLE, TAKEN, Lease
from runtime.store.models import Instance, Timer, Transition, table
from runtime.store.prepared import Prepared, RawTransaction
from runtime.store.upgrades import switch_version

_instances = table(Instance)
_i = _instances.c
_timers = table(Timer)
_t = _timers.c
_fenced = (_i.id == bindparam("instance_id"), _i.lease_token == bindparam("token"))

def _insert_new(dialect: Dialect) -> ClauseElement:
    # A name taken already writes nothing (rowcount 0) instead of failing the transaction,
    # which other steps' commits may share (see runtime/instances/committer.py).
    insert_for = pg_insert if dialect.name == "postgresql" else sqlite_insert
    return insert_for(_instances).values(status=RUNNING, seq=1).on_conflict_do_nothing()


_INSERT_INSTANCE = Prepared(
    _insert_new,
    column_keys=[
        "id", "machine_id", "slug", "version_id", "state_json", "context", "view", "ts",
        "cut_off", "lease_owner", "lease_token", "lease_expires_at", "created_at", "parent",
    ],
)  # fmt: skip
_NEW_STATE = {
    "state_json": bindparam("new_state_json"),
    "context": bindparam("new_context", type_=_i.context.type),
    "view": bindparam("new_view", type_=_i.view.type),
    "ts": bindparam("new_ts"),
    "seq": bindparam("new_seq"),
    "cut_off": bindparam("new_cut_off", type_=_i.cut_off.type),
}
_COMMIT = Prepared(update(_instances).where(*_fenced).values(**_NEW_STATE))
# The step's last commit also gives up its lease (one transaction fewer per event).
_COMMIT_AND_RELEASE = Prepared(
    update(_instances)
    .where(*_fenced)
    .values(**_NEW_STATE, lease_owner=None, lease_token=None, lease_expires_at=None)
)
# The first commit of a step that read the instance without its lease: only if nothing was
# committed since that read, the instance still runs and its lease is still free.
_unchanged = (
    _i.id == bindparam("instance_id"),
    _i.seq == bindparam("read_seq"),
    _i.status == RUNNING,
    CLAIMABLE,
)
_COMMIT_UNLEASED = Prepared(update(_instances).where(*_unchanged).values(**_NEW_STATE, **TAKEN))
_COMMIT_UNLEASED_LAST = Prepared(
    update(_instances)
    .where(*_unchanged)
    .values(**_NEW_STATE, **{column: None for column in TAKEN})
)
_SAVE_CUT_OFF = Prepared(
    update(_instances)
    .where(*_fenced)
    .values(cut_off=bindparam("new_cut_off", type_=_i.cut_off.type))
)
_RECORD = Prepared(
    insert(table(Transition)),
    column_keys=["instance_id", "seq", "event", "state", "created_at"],
)
_claimed = (_t.id == bindparam("timer_id"), _t.claimed_by == bindparam("claim"))
_CONSUME_TIMER = Prepared(delete(_timers).where(*_claimed))
# Checked before anything else of a delivery is written (and locked on PostgreSQL until the
# delivery's commit), so a stale delivery fails without writing: see `consume_timer`.
_HOLD_TIMER = {
    "postgresql": Prepared(select(_t.id).where(*_claimed).with_for_update(), returns=[_t.id]),
    "sqlite": Prepared(select(_t.id).where(*_claimed), returns=[_t.id]),
}
# The machine's own timers: its outbox (events for other instances, children to create) is
# still delivered after it stopped.
_CLEAR_TIMERS = Prepared(
    delete(_timers).where(_t.instance_id == bindparam("instance_id"), _t.delivery.is_(None))
)
_CANCEL_TIMER = Prepared(
    delete(_timers).where(
        _t.instance_id == bindparam("instance_id"), _t.send_id == bindparam("send_id")
    )
)


def _upsert(dialect: Dialect) -> ClauseElement:
    insert_for = pg_insert if dialect.name == "postgresql" else sqlite_insert
    stmt = insert_for(_timers).values(attempts=0)
    return stmt.on_conflict_do_update(
        index_elements=["instance_id", "send_id"],
        set_={
            "event": stmt.excluded.event,
            "delivery": stmt.excluded.delivery,
            "due_at_ms": stmt.excluded.due_at_ms,
            "attempts": 0,
            "claimed_by": None,
            "claim_expires_at": None,
            "created_at": stmt.excluded.created_at,
        },
    )


_UPSERT_TIMER = Prepared(
    _upsert,
    column_keys=["instance_id", "send_id", "event", "due_at_ms", "created_at", "delivery"],
)


@dataclass(frozen=True)
class Committed:
    """What a commit wrote: enough to answer the request without reading back."""

    seq: int
    ts: int
    view: dict[str, Any]


def insert_first(
    tx: RawTransaction,
    *,
    lease: Lease,
    owner: str,
    lease_expires_at: int,
    machine_id: uuid.UUID,
    slug: str,
    version_id: uuid.UUID,
    step: Macrostep,
    ts: int,
    now: datetime,
    parent: dict[str, Any] | None = None,
) -> Committed:
    """Create the instance row with its first state, leased to the creating step unless this
    is the step's last commit (`step.last`); `parent` if it is a persistent child."""
    view = step.view.view()
    held = not step.last
    row = {
        "id": lease.instance_id,
        "machine_id": machine_id,
        "slug": slug,
        "version_id": version_id,
        "state_json": step.state_json,
        "context": step.context,
        "view": view,
        "ts": ts,
        "cut_off": list(step.running),
        "lease_owner": owner if held else None,
        "lease_token": lease.token if held else None,
        "lease_expires_at": lease_expires_at if held else None,
        "created_at": now,
        "parent": parent,
    }
    try:
        inserted = tx.execute(_INSERT_INSTANCE, row)
    except tx.integrity_error as exc:  # the machine or its version was deleted meanwhile
        raise NotFoundError(f"instance {slug!r} cannot be created: its machine version is "
                            "gone", parameter="machineVersionId") from exc
    if inserted != 1:
        raise ConflictError(f"instance {slug!r} already exists", code="already-exists")
    _record(tx, lease.instance_id, 1, step, now)
    return Committed(seq=1, ts=ts, view=view)


def commit(
    tx: RawTransaction, *, lease: Lease, seq: int, step: Macrostep, ts: int, now: datetime
) -> Committed:
    """Write macrostep number `seq` (fenced by the lease) with its transition and timers; the
    step's last commit (`step.last`) releases the lease too."""
    view = step.view.view()
    fence = {"instance_id": lease.instance_id, "token": lease.token}
    changed = tx.execute(
        _COMMIT_AND_RELEASE if step.last else _COMMIT, {**fence, **_new_state(step, view, ts, seq)}
    )
    if changed != 1:
        raise ConflictError(
            "the instance was deleted or taken over during this step; this step was not saved",
            code="instance-busy",
        )
    _record(tx, lease.instance_id, seq, step, now)
    return Committed(seq=seq, ts=ts, view=view)


def commit_unleased(
    tx: RawTransaction,
    *,
    lease: Lease,
    owner: str,
    now_ms: int,
    lease_expires_at: int,
    seq: int,
    step: Macrostep,
    ts: int,
    now: datetime,
) -> Committed:
    """Write macrostep number `seq`, the first of a step that read the instance at `seq - 1`
    without taking its lease, and take the lease unless this is the step's last commit.
    Raises InstanceChangedError, writing nothing, if the row is no longer as the step read it."""
    view = step.view.view()
    params = {
        "instance_id": lease.instance_id,
        "read_seq": seq - 1,
        "owner": owner,
        "token": lease.token,
        "now_ms": now_ms,
        "expires_at": lease_expires_at,
    }
    statement = _COMMIT_UNLEASED_LAST if step.last else _COMMIT_UNLEASED
    if tx.execute(statement, {**params, **_new_state(step, view, ts, seq)}) != 1:
        raise InstanceChangedError("the instance changed during this step")
    _record(tx, lease.instance_id, seq, step, now)
    return Committed(seq=seq, ts=ts, view=view)


def _new_state(step: Macrostep, view: dict[str, Any], ts: int, seq: int) -> dict[str, Any]:
    return {
        "new_state_json": step.state_json,
        "new_context": step.context,
        "new_view": view,
        "new_ts": ts,
        "new_seq": seq,
        # The services running after this macrostep: if the step never reaches its end (a
        # crash), these are the ones the next step fails with error.platform first.
        "new_cut_off": list(step.running),
    }


def hold_timer(tx: RawTransaction, timer_id: int, claim: str) -> bool:
    """Whether the claimed timer is still ours to deliver (locking it on PostgreSQL until the
    transaction ends); False if it was re-armed, cancelled or re-claimed meanwhile. Written
    nothing either way: the delivery's own writes come next, then `consume_timer`."""
    params = {"timer_id": timer_id, "claim": claim}
    return tx.first(_HOLD_TIMER[tx.dialect_name], params) is not None


def consume_timer(tx: RawTransaction, timer_id: int, claim: str) -> bool:
    """Delete a delivered timer; False if it was re-armed, cancelled or re-claimed
    meanwhile (see `timers.py`)."""
    return tx.execute(_CONSUME_TIMER, {"timer_id": timer_id, "claim": claim}) == 1


def save_cut_off(tx: RawTransaction, lease: Lease, cut_off: list[str]) -> None:
    params = {"instance_id": lease.instance_id, "token": lease.token, "new_cut_off": cut_off}
    tx.execute(_SAVE_CUT_OFF, params)


def _record(
    tx: RawTransaction, instance_id: uuid.UUID, seq: int, step: Macrostep, now: datetime
) -> None:
    transition = {"instance_id": instance_id, "seq": seq, "event": step.event}
    tx.execute(_RECORD, {**transition, "state": step.view.value, "created_at": now})
    if step.upgrade_to is not None:  # an upgrade's transition: the version switch goes with it
        switch_version(tx, instance_id, step.upgrade_to)
    if step.clear_timers:  # the machine reached its final state: XState drops its timers
        tx.execute(_CLEAR_TIMERS, {"instance_id": instance_id})
    for send_id in step.cancels:
        tx.execute(_CANCEL_TIMER, {"instance_id": instance_id, "send_id": send_id})
    for timer in step.timers:
        _upsert_timer(tx, instance_id, timer, now)


def _upsert_timer(
    tx: RawTransaction, instance_id: uuid.UUID, timer: ArmedTimer, now: datetime
) -> None:
    row = {"instance_id": instance_id, "send_id": timer.send_id, "event": timer.event,
           "delivery": timer.delivery}
    tx.execute(_UPSERT_TIMER, {**row, "due_at_ms": timer.due_at_ms, "created_at": now})
