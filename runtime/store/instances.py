"""Instances, their transitions and timers.

Every write of a step goes through `insert_first` / `commit`, each one short transaction that
holds the macrostep's new state, its transition row and its timer changes together. `commit`
is fenced: it only updates the row while the caller's lease token is still the instance's, so a
step that lost its lease (expired, instance deleted) can never overwrite someone else's work.

Timers are keyed by (instance, send_id). Re-arming an id that is still pending *replaces* it
(new event and due time, attempts reset): last write wins, so an id names at most one pending
delivery and a `cancel(id)` always leaves none. Cancels of a macrostep are applied before its
new timers; a macrostep that reaches the machine's final state first drops them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from runtime.errors import ConflictError, NotFoundError
from runtime.results import Macrostep
from runtime.results import Timer as ArmedTimer
from runtime.store.models import Instance, Machine, Timer, Transition
from runtime.store.pagination import page

RUNNING = "running"
PAUSED = "paused"


@dataclass(frozen=True)
class Lease:
    instance_id: uuid.UUID
    token: str


@dataclass(frozen=True)
class Committed:
    """What a commit wrote: enough to answer the request without reading back."""

    seq: int
    ts: int
    view: dict[str, Any]


def get(session: Session, machine: Machine, slug: str) -> Instance:
    instance = session.scalar(
        select(Instance).where(Instance.machine_id == machine.id, Instance.slug == slug)
    )
    if instance is None:
        raise NotFoundError(f"instance {slug!r} not found", parameter="instanceName")
    return instance


def find(session: Session, instance_id: uuid.UUID) -> Instance | None:
    return session.get(Instance, instance_id)


def fresh(session: Session, instance_id: uuid.UUID) -> Instance:
    """The row as committed now (bypassing the session's identity map)."""
    instance = session.scalar(
        select(Instance).where(Instance.id == instance_id).execution_options(populate_existing=True)
    )
    if instance is None:
        raise NotFoundError("instance not found", parameter="instanceName")
    return instance


def exists(session: Session, machine: Machine, slug: str) -> bool:
    return (
        session.scalar(
            select(Instance.id).where(Instance.machine_id == machine.id, Instance.slug == slug)
        )
        is not None
    )


def list_page(
    session: Session, machine: Machine, *, cursor: str | None, limit: int
) -> tuple[list[Instance], str | None]:
    stmt = select(Instance).where(Instance.machine_id == machine.id)
    return page(session, stmt, Instance.created_at, Instance.id, cursor=cursor, limit=limit)


def insert_first(
    session: Session,
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
) -> Committed:
    """Create the instance row with its first state, already leased to the creating step."""
    view = _view(step)
    row = Instance(
        id=lease.instance_id,
        machine_id=machine_id,
        slug=slug,
        version_id=version_id,
        status=RUNNING,
        state_json=step.state_json,
        context=step.context,
        view=view,
        ts=ts,
        seq=1,
        cut_off=list(step.running),
        lease_owner=owner,
        lease_token=lease.token,
        lease_expires_at=lease_expires_at,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise ConflictError(f"instance {slug!r} already exists", code="already-exists") from exc
    _record(session, lease.instance_id, 1, step, now)
    return Committed(seq=1, ts=ts, view=view)


def commit(
    session: Session, *, lease: Lease, seq: int, step: Macrostep, ts: int, now: datetime
) -> Committed:
    """Write macrostep number `seq` (fenced by the lease) with its transition and timers."""
    view = _view(step)
    result = session.execute(
        update(Instance)
        .where(Instance.id == lease.instance_id, Instance.lease_token == lease.token)
        .values(
            state_json=step.state_json,
            context=step.context,
            view=view,
            ts=ts,
            seq=seq,
            # The services running after this macrostep: if the step never reaches its end
            # (a crash), these are the ones the next step fails with error.platform first.
            cut_off=list(step.running),
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            "the instance was deleted or taken over during this step; this step was not saved",
            code="instance-busy",
        )
    _record(session, lease.instance_id, seq, step, now)
    return Committed(seq=seq, ts=ts, view=view)


def save_cut_off(session: Session, lease: Lease, cut_off: list[str]) -> None:
    session.execute(
        update(Instance)
        .where(Instance.id == lease.instance_id, Instance.lease_token == lease.token)
        .values(cut_off=cut_off)
    )


def set_status(session: Session, machine: Machine, slug: str, status: str) -> None:
    instance = get(session, machine, slug)
    instance.status = status


def delete_one(session: Session, machine: Machine, slug: str) -> None:
    """Delete an instance with its transitions and timers, without waiting for a running step
    (whose next commit is then refused)."""
    instance = get(session, machine, slug)
    session.execute(delete(Transition).where(Transition.instance_id == instance.id))
    session.execute(delete(Timer).where(Timer.instance_id == instance.id))
    session.execute(delete(Instance).where(Instance.id == instance.id))


def transitions_page(
    session: Session, instance: Instance, *, after_seq: int, limit: int
) -> tuple[list[Transition], int | None]:
    rows = list(
        session.scalars(
            select(Transition)
            .where(Transition.instance_id == instance.id, Transition.seq > after_seq)
            .order_by(Transition.seq)
            .limit(limit + 1)
        )
    )
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].seq


def pending_timers(session: Session, instance_id: uuid.UUID) -> list[Timer]:
    return list(
        session.scalars(
            select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.due_at_ms)
        )
    )


def _view(step: Macrostep) -> dict[str, Any]:
    view = step.view
    out: dict[str, Any] = {"state": view.value, "tags": list(view.tags), "done": view.done}
    if view.public_context is not None:
        out["publicContext"] = view.public_context
    return out


def _record(
    session: Session, instance_id: uuid.UUID, seq: int, step: Macrostep, now: datetime
) -> None:
    session.add(
        Transition(
            instance_id=instance_id,
            seq=seq,
            event=step.event,
            state=step.view.value,
            created_at=now,
        )
    )
    if step.clear_timers:   # the machine reached its final state: XState drops its timers
        session.execute(delete(Timer).where(Timer.instance_id == instance_id))
    if step.cancels:
        session.execute(
            delete(Timer).where(Timer.instance_id == instance_id, Timer.send_id.in_(step.cancels))
        )
    for timer in step.timers:
        _upsert_timer(session, instance_id, timer, now)
    session.flush()


def _upsert_timer(
    session: Session, instance_id: uuid.UUID, timer: ArmedTimer, now: datetime
) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Timer).values(
        instance_id=instance_id,
        send_id=timer.send_id,
        event=timer.event,
        due_at_ms=timer.due_at_ms,
        attempts=0,
        created_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["instance_id", "send_id"],
        set_={
            "event": stmt.excluded.event,
            "due_at_ms": stmt.excluded.due_at_ms,
            "attempts": 0,
            "claimed_by": None,
            "claim_expires_at": None,
            "created_at": stmt.excluded.created_at,
        },
    )
    session.execute(stmt)
