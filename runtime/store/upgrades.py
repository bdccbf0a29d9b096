"""An instance's upgrades in the store: the version it should move to (its desired version),
the timers an upgrade looks at, and the version switch an upgrade commits together with its
`statebacked.upgrade` transition (see `commits._record` and runtime/instances/upgrades.py)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.orm import Session

from runtime.errors import ChangedAfterWritesError
from runtime.store.models import Instance, Timer, table
from runtime.store.prepared import Prepared, RawTransaction

_instances = table(Instance)
_i = _instances.c
_to = bindparam("to_version_id", type_=_i.version_id.type)
# The upgrade takes effect only while it is still the one asked for: a `PUT .../v` made during
# the step (to another version, or back) wins, and the step is run again on the row as it is.
_SWITCH = Prepared(
    update(_instances)
    .where(_i.id == bindparam("instance_id", type_=_i.id.type), _i.desired_version_id == _to)
    .values(version_id=_to, desired_version_id=None)
)


def switch_version(tx: RawTransaction, instance_id: uuid.UUID, to_version_id: uuid.UUID) -> None:
    """Move the instance to `to_version_id`, the desired version it was upgraded to, in the
    transaction of the upgrade's transition; ChangedAfterWritesError (found after the
    transition's writes, so the transaction is rolled back) if the desired version changed."""
    if tx.execute(_SWITCH, {"instance_id": instance_id, "to_version_id": to_version_id}) != 1:
        raise ChangedAfterWritesError(
            "the instance's desired version changed during its upgrade")


def set_desired(
    session: Session,
    instance_id: uuid.UUID,
    *,
    current_version_id: uuid.UUID,
    desired_version_id: uuid.UUID | None,
) -> bool:
    """Record the version the instance should be upgraded to (None: no upgrade pending), if it
    still runs `current_version_id` (the version its migration path was found from)."""
    result = session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.version_id == current_version_id)
        .values(desired_version_id=desired_version_id)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def pending_timers(session: Session, instance_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """The instance's pending durable timers: (send id, event); not its outbox (events for
    other instances, children to create), which an upgrade leaves alone."""
    rows = session.execute(
        select(Timer.send_id, Timer.event)
        .where(Timer.instance_id == instance_id, Timer.delivery.is_(None))
    )
    return [(send_id, event) for send_id, event in rows]
