"""Machine logs: storing entries in batches, reading a page of them, and keeping the table
bounded (by age, and by rows per org)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from runtime.store.models import Instance, Machine, MachineLog, Org

PRUNE_BATCH = 5000  # rows per delete: each batch is a short write transaction


@dataclass(frozen=True)
class NewEntry:
    org_id: uuid.UUID
    ts_ms: int
    machine: str
    instance: str
    version_id: uuid.UUID | None
    stream: str
    text: str


def insert_many(session: Session, entries: Sequence[NewEntry]) -> None:
    rows = [{
        "org_id": e.org_id, "ts_ms": e.ts_ms, "machine": e.machine, "instance": e.instance,
        "version_id": e.version_id or _version_of(session, e), "stream": e.stream, "text": e.text,
    } for e in entries]  # fmt: skip
    session.execute(insert(MachineLog), rows)


def _version_of(session: Session, entry: NewEntry) -> uuid.UUID | None:
    """The instance's current version, for a runtime line written without one."""
    found: uuid.UUID | None = session.scalar(
        select(Instance.version_id)
        .join(Machine, Machine.id == Instance.machine_id)
        .where(Machine.org_id == entry.org_id, Machine.slug == entry.machine,
               Instance.slug == entry.instance)
    )
    return found


def page(session: Session, org_id: uuid.UUID, *, from_ms: int, until_ms: int,
         machine: str | None, instance: str | None, version_id: uuid.UUID | None,
         limit: int) -> list[MachineLog]:
    """Up to `limit` entries of the org with `from_ms <= ts_ms < until_ms`, oldest first."""
    stmt = select(MachineLog).where(
        MachineLog.org_id == org_id, MachineLog.ts_ms >= from_ms, MachineLog.ts_ms < until_ms)
    if machine is not None:
        stmt = stmt.where(MachineLog.machine == machine)
    if instance is not None:
        stmt = stmt.where(MachineLog.instance == instance)
    if version_id is not None:
        stmt = stmt.where(MachineLog.version_id == version_id)
    return list(session.scalars(stmt.order_by(MachineLog.ts_ms, MachineLog.id).limit(limit)))


def orgs(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(Org.id)))


def older_than(session: Session, org_id: uuid.UUID, cutoff_ms: int) -> list[int]:
    """Ids of up to a batch of the org's entries older than `cutoff_ms`."""
    return list(session.scalars(
        select(MachineLog.id)
        .where(MachineLog.org_id == org_id, MachineLog.ts_ms < cutoff_ms)
        .order_by(MachineLog.ts_ms, MachineLog.id).limit(PRUNE_BATCH)
    ))


def beyond_newest(session: Session, org_id: uuid.UUID, keep: int) -> list[int]:
    """Ids of up to a batch of the org's entries older than its newest `keep`."""
    boundary = session.execute(
        select(MachineLog.ts_ms, MachineLog.id).where(MachineLog.org_id == org_id)
        .order_by(MachineLog.ts_ms.desc(), MachineLog.id.desc()).offset(keep).limit(1)
    ).first()
    if boundary is None:
        return []
    ts_ms, id_ = boundary
    older = or_(MachineLog.ts_ms < ts_ms, and_(MachineLog.ts_ms == ts_ms, MachineLog.id <= id_))
    return list(session.scalars(
        select(MachineLog.id).where(MachineLog.org_id == org_id, older)
        .order_by(MachineLog.ts_ms, MachineLog.id).limit(PRUNE_BATCH)
    ))


def delete_ids(session: Session, ids: list[int]) -> None:
    session.execute(delete(MachineLog).where(MachineLog.id.in_(ids)))
