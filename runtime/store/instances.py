"""Instances, their transitions and timers: reads and administration.

A step's own writes (its macrosteps' states, transitions and timer changes) are in
`commits.py`; the lease that serializes steps is in `leases.py`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import Instance, Machine, Timer, Transition
from runtime.store.pagination import page

RUNNING = "running"
PAUSED = "paused"


def get(session: Session, machine: Machine, slug: str) -> Instance:
    instance = session.scalar(
        select(Instance).where(Instance.machine_id == machine.id, Instance.slug == slug)
    )
    if instance is None:
        raise NotFoundError(f"instance {slug!r} not found", parameter="instanceName")
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
    """The instance's pending durable timers, due first."""
    query = select(Timer).where(Timer.instance_id == instance_id).order_by(Timer.due_at_ms)
    return list(session.scalars(query))
