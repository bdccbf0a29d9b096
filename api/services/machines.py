"""Machines (blocking calls; routes run them on the thread pool)."""

from __future__ import annotations

import uuid

from api.crypto import hmac_sha256_b64url
from runtime.clock import Clock
from runtime.errors import InvalidRequestError
from runtime.store import Database
from runtime.store import machines as machine_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.models import Machine, MachineVersion

WithVersion = tuple[Machine, MachineVersion | None]


class MachineService:
    def __init__(self, db: Database, clock: Clock, *, page_size: int):
        self._db = db
        self._clock = clock
        self._page_size = page_size

    def create(self, org_id: uuid.UUID, slug: str) -> None:
        with self._db.transaction() as session:
            machine_store.create(session, org_id, slug, now=to_datetime(self._clock.now_ms()))

    def get(self, org_id: uuid.UUID, slug: str) -> WithVersion:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, slug)
            current = version_store.find_many(session, _current_ids([machine]))
            return machine, _current(machine, current)

    def list_page(
        self, org_id: uuid.UUID, cursor: str | None
    ) -> tuple[list[WithVersion], str | None]:
        with self._db.transaction() as session:
            rows, next_cursor = machine_store.list_page(
                session, org_id, cursor=cursor, limit=self._page_size
            )
            current = version_store.find_many(session, _current_ids(rows))
            return [(row, _current(row, current)) for row in rows], next_cursor

    def delete(self, org_id: uuid.UUID, slug: str, confirmation: str) -> None:
        if confirmation != hmac_sha256_b64url(slug, slug):
            raise InvalidRequestError(
                "confirmation HMAC does not match the machine name",
                parameter="hmacSha256OfMachineNameWithMachineNameKey",
            )
        with self._db.transaction() as session:
            machine_store.delete_one(session, machine_store.get(session, org_id, slug))


def _current_ids(machines: list[Machine]) -> set[uuid.UUID]:
    return {m.current_version_id for m in machines if m.current_version_id is not None}


def _current(machine: Machine, versions: dict[uuid.UUID, MachineVersion]) -> MachineVersion | None:
    return versions.get(machine.current_version_id) if machine.current_version_id else None
