"""Machine instances at the edge: the caller (`Principal`) turned into the plain values of
`runtime.instances.Instances`, and the administrative reads the API serves."""

from __future__ import annotations

import uuid
from typing import Any

from api import ids
from api.auth import Principal
from api.crypto import hmac_sha256_b64url
from runtime.errors import InvalidRequestError, NotFoundError
from runtime.instances import Instances
from runtime.store import Database
from runtime.store import instances as instance_store
from runtime.store import machines as machine_store
from runtime.store import versions as version_store
from runtime.store.models import Instance, MachineVersion, Transition


class InstanceService:
    def __init__(self, db: Database, core: Instances, *, page_size: int):
        self._db = db
        self._core = core
        self._page_size = page_size

    async def create(
        self,
        principal: Principal,
        machine_name: str,
        slug: str,
        context: dict[str, Any] | None,
        version_id: str | None,
    ) -> dict[str, Any]:
        """Create and start an instance (allowWrite `initialization`); its settled State."""
        state = await self._core.create(
            principal.org_id, machine_name, slug, context=context,
            version_id=_version_id(version_id), auth_context=principal.auth_context,
        )  # fmt: skip
        return state.wire()

    async def send(
        self, principal: Principal, machine_name: str, slug: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        """Deliver one event (allowWrite `event`) and settle; the resulting State."""
        state = await self._core.send(
            principal.org_id, machine_name, slug, event, auth_context=principal.auth_context
        )
        return state.wire()

    async def read(self, principal: Principal, machine_name: str, slug: str) -> dict[str, Any]:
        """The instance's State, if its `allowRead` lets this caller see it."""
        state = await self._core.read(
            principal.org_id, machine_name, slug, auth_context=principal.auth_context
        )
        return state.wire()

    async def set_status(
        self, principal: Principal, machine_name: str, slug: str, status: str
    ) -> None:
        await self._core.set_status(principal.org_id, machine_name, slug, status)

    async def set_desired_version(
        self, principal: Principal, machine_name: str, slug: str, version_id: str
    ) -> None:
        """Upgrade the instance at its next settled event (NoMigrationPathError if no
        migrations lead to `version_id`, a pretty id)."""
        target = ids.decode("ver", version_id)
        if target is None:
            raise NotFoundError("machine version not found", parameter="targetMachineVersionId")
        await self._core.set_desired_version(principal.org_id, machine_name, slug, target)

    async def delete(
        self, principal: Principal, machine_name: str, slug: str, confirmation: str
    ) -> None:
        if confirmation != hmac_sha256_b64url(machine_name, slug):
            raise InvalidRequestError(
                "confirmation HMAC does not match the instance name",
                parameter="hmacSha256OfMachineInstanceNameWithMachineNameKey",
            )
        await self._core.delete(principal.org_id, machine_name, slug)

    # --- administrative reads (blocking) --------------------------------------------------

    def admin_state(
        self, principal: Principal, machine_name: str, slug: str
    ) -> tuple[Instance, MachineVersion, MachineVersion | None]:
        """The instance, its version and the version it is to be upgraded to (if any)."""
        with self._db.read() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            instance = instance_store.get(session, machine, slug)
            desired = instance.desired_version_id
            return (
                instance,
                version_store.get(session, instance.version_id),
                None if desired is None else version_store.get(session, desired),
            )

    def list_page(
        self, principal: Principal, machine_name: str, cursor: str | None
    ) -> tuple[list[tuple[Instance, MachineVersion]], str | None]:
        with self._db.read() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            rows, next_cursor = instance_store.list_page(
                session, machine, cursor=cursor, limit=self._page_size
            )
            versions = version_store.find_many(session, {row.version_id for row in rows})
            return [(row, versions[row.version_id]) for row in rows], next_cursor

    def transitions(
        self, principal: Principal, machine_name: str, slug: str, cursor: str | None
    ) -> tuple[list[Transition], str | None]:
        after = _seq_cursor(cursor)
        with self._db.read() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            instance = instance_store.get(session, machine, slug)
            rows, last = instance_store.transitions_page(
                session, instance, after_seq=after, limit=self._page_size
            )
            return rows, None if last is None else str(last)


def _version_id(pretty: str | None) -> uuid.UUID | None:
    if pretty is None:
        return None
    version_id = ids.decode("ver", pretty)
    if version_id is None:
        raise NotFoundError("machine version not found", parameter="machineVersionId")
    return version_id


def _seq_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise InvalidRequestError("cursor is not valid", parameter="cursor")
    return int(cursor)
