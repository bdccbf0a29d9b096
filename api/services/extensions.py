"""What backstate serves beyond State Backed's API, for its dashboard (and anyone else):

- a version's definition (the structure of its state chart, `runtime/definitions.py`);
- making an existing version current (State Backed can only do it when finalizing one);
- an instance's pending durable timers.

Blocking calls; routes run them off the event loop.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api import ids
from runtime import definitions
from runtime.engine import Runtime
from runtime.errors import BundleError, NotFoundError
from runtime.instances.versions import bundle_source
from runtime.store import Database
from runtime.store import instances as instance_store
from runtime.store import machines as machine_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.models import MachineVersion


@dataclass(frozen=True)
class PendingTimer:
    send_id: str
    event: Any
    due_at: datetime
    attempts: int


class ExtensionService:
    def __init__(self, db: Database, runtime: Runtime):
        self._db = db
        self._runtime = runtime

    def definition(self, org_id: uuid.UUID, machine_name: str, pretty_id: str) -> dict[str, Any]:
        """The version's definition. A version finalized before definitions were stored gets
        its definition extracted now, from its bundle, and kept."""
        version_id = _version_id(pretty_id)
        with self._db.transaction() as session:
            version = self._final(session, org_id, machine_name, version_id)
            stored, bundle = version.definition, version.bundle
        if stored is not None:
            return stored
        if bundle is None:
            raise NotFoundError("machine version has no code", parameter="machineVersionId")
        try:
            extracted = self._runtime.describe_bundle(bundle_source(bundle))
        except BundleError as exc:   # it loaded once; a later sandbox may refuse it
            extracted = definitions.unavailable(f"the bundle no longer loads: {exc.message}")
        with self._db.transaction() as session:
            version_store.get(session, version_id).definition = extracted
        return extracted

    def make_current(self, org_id: uuid.UUID, machine_name: str, pretty_id: str) -> None:
        """Make a finalized version of the machine its current one (new instances start in it;
        existing instances keep theirs)."""
        version_id = _version_id(pretty_id)
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            version_store.get_final(session, machine, version_id)
            machine.current_version_id = version_id

    def timers(self, org_id: uuid.UUID, machine_name: str, slug: str) -> list[PendingTimer]:
        """The instance's pending durable timers (delayed sends and `after` delays), due first."""
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            instance = instance_store.get(session, machine, slug)
            return [
                PendingTimer(row.send_id, row.event, to_datetime(row.due_at_ms), row.attempts)
                for row in instance_store.pending_timers(session, instance.id)
            ]

    @staticmethod
    def _final(
        session: Session, org_id: uuid.UUID, machine_name: str, version_id: uuid.UUID
    ) -> MachineVersion:
        machine = machine_store.get(session, org_id, machine_name)
        return version_store.get_final(session, machine, version_id)


def _version_id(pretty_id: str) -> uuid.UUID:
    version_id = ids.decode("ver", pretty_id)
    if version_id is None:
        raise NotFoundError("machine version not found", parameter="machineVersionId")
    return version_id
