"""Migrations between two versions of a machine: provisional until their code is uploaded and
they are finalized; the final ones are the edges of the machine's migration graph.

(Not to be confused with `migrations/`, the Alembic migrations of this database's schema.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from runtime.errors import NotFoundError
from runtime.store.models import Machine, VersionMigration
from runtime.store.versions import FINAL, PROVISIONAL


def create_provisional(
    session: Session,
    machine: Machine,
    *,
    from_version_id: uuid.UUID,
    to_version_id: uuid.UUID,
    now: datetime,
) -> VersionMigration:
    migration = VersionMigration(
        id=uuid.uuid4(), machine_id=machine.id, from_version_id=from_version_id,
        to_version_id=to_version_id, status=PROVISIONAL, created_at=now,
    )  # fmt: skip
    session.add(migration)
    session.flush()
    return migration


def get(session: Session, migration_id: uuid.UUID) -> VersionMigration:
    migration = session.get(VersionMigration, migration_id)
    if migration is None:
        raise NotFoundError("migration not found", parameter="machineVersionMigrationId")
    return migration


def store_bundle(session: Session, migration_id: uuid.UUID, gzipped: bytes) -> None:
    migration = get(session, migration_id)
    if migration.status != PROVISIONAL:
        raise NotFoundError("no provisional migration to upload to", parameter="token")
    migration.bundle = gzipped


def finalize(session: Session, migration_id: uuid.UUID) -> None:
    get(session, migration_id).status = FINAL


def final_edges(session: Session, machine_id: uuid.UUID) -> Sequence[VersionMigration]:
    """The machine's final migrations, oldest first, without their code."""
    rows = session.scalars(
        select(VersionMigration)
        .options(defer(VersionMigration.bundle))
        .where(VersionMigration.machine_id == machine_id, VersionMigration.status == FINAL)
        .order_by(VersionMigration.created_at, VersionMigration.id)
    )
    return list(rows)


def bundle_of(session: Session, migration_id: uuid.UUID) -> bytes:
    bundle = session.scalar(
        select(VersionMigration.bundle).where(VersionMigration.id == migration_id)
    )
    if bundle is None:
        raise NotFoundError("migration has no code", parameter="machineVersionMigrationId")
    return bundle
