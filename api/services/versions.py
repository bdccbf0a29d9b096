"""Machine versions, created in three steps, as State Backed's clients drive them:

1. `provisional` makes a provisional version and returns its *signed* id plus where to upload
   its code (`uploads.CodeUploads`, shared with migrations);
2. the upload (no bearer token: the form's token authorizes it) stores the code gzipped;
3. `finalize` checks the signed id, loads the code in the sandbox, and makes it final (and
   current, if asked).
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
from runtime.store import Database
from runtime.store import machines as machine_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.models import MachineVersion

UPLOAD_KIND = "version"   # what `CodeUploads` stores with `version_store.store_bundle`
_SIGNED_ID = "machine-version"


class VersionService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keys: ServerKeys,
        runtime: Runtime,
        *,
        uploads: CodeUploads,
        page_size: int,
    ):
        self._db = db
        self._clock = clock
        self._keys = keys
        self._runtime = runtime
        self._uploads = uploads
        self._page_size = page_size

    def provisional(self, org_id: uuid.UUID, machine_name: str, base_url: str) -> Provisional:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            version = version_store.create_provisional(
                session, machine, now=to_datetime(self._clock.now_ms())
            )
        pretty = ids.encode("ver", version.id)
        signature = self._keys.sign(_SIGNED_ID, f"{machine.id}:{version.id}")
        return self._uploads.provisional(UPLOAD_KIND, version.id, f"{pretty}.{signature}",
                                         base_url)

    def finalize(
        self,
        org_id: uuid.UUID,
        machine_name: str,
        signed_id: str,
        *,
        client_info: str | None,
        make_current: bool,
    ) -> str:
        """Validate the uploaded code and make the version final; its pretty id."""
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            version_id = self._verify_signed_id(machine.id, signed_id)
            version = version_store.get(session, version_id)
            if version.machine_id != machine.id:
                raise NotFoundError("machine version not found", parameter="machineVersionId")
            bundle = version.bundle
        if bundle is None:
            raise InvalidRequestError(
                "no code was uploaded for this version", parameter="machineVersionId"
            )
        definition = self._runtime.describe_bundle(bundle_source(bundle))  # validates it too
        with self._db.transaction() as session:
            version = version_store.get(session, version_id)
            version.status = version_store.FINAL
            version.definition = definition
            if client_info is not None:
                version.client_info = client_info
            if make_current:
                machine_store.get(session, org_id, machine_name).current_version_id = version_id
        return ids.encode("ver", version_id)

    def list_page(
        self, org_id: uuid.UUID, machine_name: str, cursor: str | None
    ) -> tuple[list[MachineVersion], str | None]:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            return version_store.list_page(session, machine, cursor=cursor, limit=self._page_size)

    def _verify_signed_id(self, machine_id: uuid.UUID, signed_id: str) -> uuid.UUID:
        pretty, _, signature = signed_id.partition(".")
        version_id = ids.decode("ver", pretty)
        if version_id is None or not self._keys.verify(
            _SIGNED_ID, f"{machine_id}:{version_id}", signature
        ):
            raise NotFoundError("machine version not found", parameter="machineVersionId")
        return version_id
