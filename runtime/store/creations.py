"""What a creation reads before it runs: the machine, the version it will run and whether the
instance's name is taken, in one `Prepared` statement (one snapshot, no ORM session).

Through the ORM these were three queries, and loading the version's row read its bundle too;
a creation's read then cost more CPU than its step (bench/FIGURES.md). The name is checked
here, before the machine runs, so that a name taken is answered 409 ahead of anything the
machine's `allowWrite` or start would say; the insert checks it again (`commits.insert_first`)
for a creation racing this one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select

from runtime.errors import ConflictError, InvalidRequestError, NotFoundError
from runtime.store.models import Instance, Machine, MachineVersion, table
from runtime.store.prepared import Prepared, RawTransaction
from runtime.store.versions import FINAL

_m = table(Machine).c
_v = table(MachineVersion).c
_i = table(Instance).c
_requested = bindparam("version_id", type_=_v.id.type)
_TAKEN = select(_i.id).where(
    _i.machine_id == _m.id, _i.slug == bindparam("instance_slug", type_=_i.slug.type)
)
# The version asked for, else the machine's current one, if it belongs to the machine.
_STATUS = select(_v.status).where(
    _v.id == func.coalesce(_requested, _m.current_version_id), _v.machine_id == _m.id
)
_TARGET = Prepared(
    select(_m.id, _m.current_version_id, _TAKEN.scalar_subquery(), _STATUS.scalar_subquery())
    .where(
        _m.org_id == bindparam("org_id", type_=_m.org_id.type),
        _m.slug == bindparam("machine_slug", type_=_m.slug.type),
    ),
    returns=[_m.id, _m.current_version_id, _i.id, _v.status],
)


@dataclass(frozen=True)
class Target:
    """Where a new instance goes: its machine and the (final) version it runs."""

    machine_id: uuid.UUID
    version_id: uuid.UUID


def target(
    tx: RawTransaction, org_id: uuid.UUID, machine: str, instance: str,
    version_id: uuid.UUID | None,
) -> Target:
    """The machine and version a creation of `instance` runs (`version_id`, default the
    machine's current version). Raises, in this order: NotFoundError (no such machine),
    ConflictError `already-exists`, InvalidRequestError (no version given, none current),
    NotFoundError (the version is not a final version of this machine)."""
    params = {"org_id": org_id, "machine_slug": machine, "instance_slug": instance,
              "version_id": version_id}
    row = tx.first(_TARGET, params)
    if row is None:
        raise NotFoundError(f"machine {machine!r} not found", parameter="machineName")
    machine_id, current, taken, status = row
    if taken is not None:
        raise ConflictError(f"instance {instance!r} already exists", code="already-exists")
    if version_id is None and current is None:
        raise InvalidRequestError(
            f"machine {machine!r} has no current version; pass machineVersionId",
            parameter="machineVersionId")
    if status != FINAL:
        raise NotFoundError("machine version not found", parameter="machineVersionId")
    return Target(machine_id, version_id or current)
