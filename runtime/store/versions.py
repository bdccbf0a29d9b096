"""Machine versions: provisional until their code is uploaded and they are finalized."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store.models import Machine, MachineVersion
from runtime.store.pagination import page

PROVISIONAL = "provisional"
FINAL = "final"


def create_provisional(session: Session, machine: Machine, *, now: datetime) -> MachineVersion:
    version = MachineVersion(
        id=uuid.uuid4(), machine_id=machine.id, status=PROVISIONAL, client_info="", created_at=now
    )
    session.add(version)
    session.flush()
    return version


def get(session: Session, version_id: uuid.UUID) -> MachineVersion:
    version = session.get(MachineVersion, version_id)
    if version is None:
        raise NotFoundError("machine version not found", parameter="machineVersionId")
    return version


def get_final(session: Session, machine: Machine, version_id: uuid.UUID) -> MachineVersion:
    version = session.get(MachineVersion, version_id)
    if version is None or version.machine_id != machine.id or version.status != FINAL:
        raise NotFoundError("machine version not found", parameter="machineVersionId")
    return version


def find_many(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, MachineVersion]:
    if not ids:
        return {}
    rows = session.scalars(select(MachineVersion).where(MachineVersion.id.in_(ids)))
    return {row.id: row for row in rows}


def store_bundle(session: Session, version_id: uuid.UUID, gzipped: bytes) -> None:
    version = get(session, version_id)
    if version.status != PROVISIONAL:
        raise NotFoundError("no provisional machine version to upload to", parameter="token")
    version.bundle = gzipped


def list_page(
    session: Session, machine: Machine, *, cursor: str | None, limit: int
) -> tuple[list[MachineVersion], str | None]:
    stmt = select(MachineVersion).where(
        MachineVersion.machine_id == machine.id, MachineVersion.status == FINAL
    )
    return page(
        session, stmt, MachineVersion.created_at, MachineVersion.id, cursor=cursor, limit=limit
    )


def bundle_of(session: Session, version_id: uuid.UUID) -> bytes:
    bundle = session.scalar(select(MachineVersion.bundle).where(MachineVersion.id == version_id))
    if bundle is None:
        raise NotFoundError("machine version has no code", parameter="machineVersionId")
    return bundle


def machine_of(session: Session, version_id: uuid.UUID) -> uuid.UUID:
    """The id of the machine `version_id` belongs to."""
    machine_id = session.scalar(
        select(MachineVersion.machine_id).where(MachineVersion.id == version_id)
    )
    if machine_id is None:
        raise NotFoundError("machine version not found", parameter="machineVersionId")
    return machine_id
