"""Migrations between two versions of a machine, created in three steps as versions are
(`uploads.py`), as `smply migrations create` and the client's `machineVersionMigrations.*`
drive them:

1. `provisional` checks that both versions are final versions of the machine, makes a
   provisional migration, and returns its *signed* id plus where to upload its code;
2. the upload (authorized by the form's token) stores the code gzipped;
3. `finalize` checks the signed id, loads the code in the sandbox under the limits machines
   have (it must export `upgradeState` and `upgradeContext` functions) and makes it final: an
   edge of the machine's migration graph (runtime/migrations.py), which instances are upgraded
   along (runtime/instances/upgrades.py).
"""

from __future__ import annotations

import uuid

from api import ids
from api.crypto import ServerKeys
from api.services.uploads import CodeUploads, Provisional
from runtime.clock import Clock
from runtime.engine import Runtime
from runtime.errors import InvalidRequestError, NotFoundError
from runtime.instances.versions import bundle_source
from runtime.migrations import load_migration
from runtime.store import Database
from runtime.store import machines as machine_store
from runtime.store import version_migrations as migration_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime

UPLOAD_KIND = "migration"   # what `CodeUploads` stores with `migration_store.store_bundle`
_SIGNED_ID = "machine-version-migration"


class MigrationService:
    def __init__(self, db: Database, clock: Clock, keys: ServerKeys, runtime: Runtime, *,
                 uploads: CodeUploads):
        self._db = db
        self._clock = clock
        self._keys = keys
        self._runtime = runtime
        self._uploads = uploads

    def provisional(self, org_id: uuid.UUID, machine_name: str, from_version: str,
                    to_version: str, base_url: str) -> Provisional:
        """Step 1: a provisional migration from `from_version` to `to_version` (pretty ids of
        final versions of the machine) and where to upload its code."""
        from_id = _version_id(from_version, "fromMachineVersionId")
        to_id = _version_id(to_version, "toMachineVersionId")
        if from_id == to_id:
            raise InvalidRequestError("a migration leads from one version to another",
                                      parameter="toMachineVersionId")
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            for version_id, parameter in ((from_id, "fromMachineVersionId"),
                                          (to_id, "toMachineVersionId")):
                try:
                    version_store.get_final(session, machine, version_id)
                except NotFoundError as exc:
                    raise NotFoundError(exc.message, parameter=parameter) from exc
            migration = migration_store.create_provisional(
                session, machine, from_version_id=from_id, to_version_id=to_id,
                now=to_datetime(self._clock.now_ms()),
            )  # fmt: skip
        pretty = ids.encode("mig", migration.id)
        signature = self._keys.sign(_SIGNED_ID, f"{machine.id}:{migration.id}")
        return self._uploads.provisional(UPLOAD_KIND, migration.id, f"{pretty}.{signature}",
                                         base_url)

    def finalize(self, org_id: uuid.UUID, machine_name: str, signed_id: str) -> str:
        """Step 3: load the uploaded code in the sandbox and make the migration final; its
        pretty id."""
        with self._db.read() as session:
            machine = machine_store.get(session, org_id, machine_name)
            migration_id = self._verify_signed_id(machine.id, signed_id)
            migration = migration_store.get(session, migration_id)
            if migration.machine_id != machine.id:
                raise NotFoundError("migration not found", parameter="machineVersionMigrationId")
            for version_id in (migration.from_version_id, migration.to_version_id):
                version_store.get_final(session, machine, version_id)
            bundle = migration.bundle
        if bundle is None:
            raise InvalidRequestError("no code was uploaded for this migration",
                                      parameter="machineVersionMigrationId")
        load_migration(self._runtime, bundle_source(bundle))
        with self._db.transaction() as session:
            migration_store.finalize(session, migration_id)
        return ids.encode("mig", migration_id)

    def _verify_signed_id(self, machine_id: uuid.UUID, signed_id: str) -> uuid.UUID:
        pretty, _, signature = signed_id.partition(".")
        migration_id = ids.decode("mig", pretty)
        if migration_id is None or not self._keys.verify(
            _SIGNED_ID, f"{machine_id}:{migration_id}", signature
        ):
            raise NotFoundError("migration not found", parameter="machineVersionMigrationId")
        return migration_id


def _version_id(pretty: str, parameter: str) -> uuid.UUID:
    version_id = ids.decode("ver", pretty)
    if version_id is None:
        raise NotFoundError(f"machine version {pretty!r} not found", parameter=parameter)
    return version_id
