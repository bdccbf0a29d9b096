"""Machines: a named slot in an org that versions and instances hang from."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from runtime.errors import ConflictError, NotFoundError
from runtime.store.models import Instance, Machine
from runtime.store.pagination import page


def create(session: Session, org_id: uuid.UUID, slug: str, *, now: datetime) -> Machine:
    machine = Machine(id=uuid.uuid4(), org_id=org_id, slug=slug, created_at=now)
    try:
        with session.begin_nested():
            session.add(machine)
    except IntegrityError as exc:
        raise ConflictError(f"machine {slug!r} already exists", code="already-exists") from exc
    return machine


def get(session: Session, org_id: uuid.UUID, slug: str) -> Machine:
    machine = session.scalar(select(Machine).where(Machine.org_id == org_id, Machine.slug == slug))
    if machine is None:
        raise NotFoundError(f"machine {slug!r} not found", parameter="machineName")
    return machine


def list_page(
    session: Session, org_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[Machine], str | None]:
    stmt = select(Machine).where(Machine.org_id == org_id)
    return page(session, stmt, Machine.created_at, Machine.id, cursor=cursor, limit=limit)


def delete_one(session: Session, machine: Machine) -> None:
    """Delete a machine and its versions; refuses while any instance exists."""
    if session.scalar(select(exists().where(Instance.machine_id == machine.id))):
        raise ConflictError("machine has instances; delete them first", code="invalid-state")
    try:
        with session.begin_nested():
            session.execute(delete(Machine).where(Machine.id == machine.id))
    except IntegrityError as exc:  # an instance was created concurrently
        raise ConflictError("machine has instances; delete them first") from exc
