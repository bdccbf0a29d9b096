"""The change log: every state written to an instance row, kept a short while for other
processes' realtime subscribers (`runtime/realtime/`).

Triggers on `instances` write it (migration 0008), in the transaction that writes the state, so
a state is in the log exactly when it is committed, whoever wrote it, and a commit pays no
statement of its own for it. Readers run on connections of their own (the realtime sources'
threads) and pass their DBAPI cursor: `after` tails the log by id (SQLite, where ids grow in
commit order), `by_ids` fetches what PostgreSQL notified; `since` is the slow path that fills a
gap some other way left (a scan: the log has no index but its primary key, to keep commits
cheap). `prune` drops what is older than the retention; it never drops the newest row, so
SQLite never hands out an id a reader has already passed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from runtime.errors import NotFoundError
from runtime.store import instances as instance_rows
from runtime.store import machines as machine_rows
from runtime.store.models import Instance, StateChange, table
from runtime.store.prepared import Prepared, RawTransaction

_log = table(StateChange)
_c = _log.c
# Created by migration 0008, named here to check they are there.
TRIGGERS = ("instances_log_insert", "instances_log_update", "instances_log_version")
_COLUMNS = (_c.id, _c.instance_id, _c.seq, _c.ts, _c.version_id, _c.view, _c.state_json)

_MAX_ID = Prepared(select(func.max(_c.id)), returns=[_c.id])
_MIN_ID = Prepared(select(func.min(_c.id)), returns=[_c.id])
_AFTER = Prepared(
    select(*_COLUMNS).where(_c.id > bindparam("after")).order_by(_c.id).limit(bindparam("n")),
    returns=_COLUMNS,
)
# PostgreSQL only (what its listener reads): one array parameter, not an expanding IN list.
_BY_IDS = Prepared(
    select(*_COLUMNS)
    .where(_c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger()))))
    .order_by(_c.id),
    returns=_COLUMNS,
)
_PRUNE = Prepared(delete(_log).where(_c.id < bindparam("below")))


@dataclass(frozen=True)
class Row:
    """One logged state. `view` is still JSON text: most rows a tail reads concern instances
    nobody in this process watches, and are never parsed."""

    id: int
    instance_id: uuid.UUID
    seq: int
    ts: int
    version_id: uuid.UUID
    view: str
    state_json: str

    def parsed_view(self) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(self.view)
        return view


def resolve(session: Session, org_id: uuid.UUID, machine: str, instance: str) -> uuid.UUID:
    """The id of the named instance (NotFoundError if there is none)."""
    return instance_rows.get(session, machine_rows.get(session, org_id, machine), instance).id


def current(session: Session, instance_id: uuid.UUID) -> Row:
    """The instance's current state, as the log would hold it (id 0: not from the log)."""
    found = session.execute(
        select(Instance.seq, Instance.ts, Instance.version_id, Instance.view, Instance.state_json)
        .where(Instance.id == instance_id)
    ).first()
    if found is None:
        raise NotFoundError("the instance was deleted", parameter="instanceName")
    seq, ts, version_id, view, state_json = found
    return Row(0, instance_id, seq, ts, version_id, json.dumps(view), state_json)


def missing_triggers(session: Session) -> list[str]:
    """The triggers that write the log that are not there (a batch migration of `instances`
    on SQLite drops them with the table it replaces)."""
    if session.get_bind().dialect.name == "postgresql":
        query = ("SELECT tgname FROM pg_trigger WHERE tgrelid = 'instances'::regclass "
                 "AND NOT tgisinternal")
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'instances'"
    present = set(session.execute(text(query)).scalars())
    return [name for name in TRIGGERS if name not in present]


def max_id(cursor: Any, dialect: Dialect) -> int:
    """The newest row's id (0 for an empty log): where a tail starts."""
    for (found,) in _rows(cursor, dialect, _MAX_ID, {}):
        return int(found or 0)
    return 0


def after(cursor: Any, dialect: Dialect, last_id: int, limit: int) -> list[Row]:
    """Up to `limit` rows after id `last_id`, oldest first."""
    return [Row(*row) for row in _rows(cursor, dialect, _AFTER, {"after": last_id, "n": limit})]


def by_ids(cursor: Any, dialect: Dialect, ids: list[int]) -> list[Row]:
    """The rows with these ids, oldest first (PostgreSQL)."""
    return [Row(*row) for row in _rows(cursor, dialect, _BY_IDS, {"ids": ids})]


def since(session: Session, instance_id: uuid.UUID, seq: int) -> list[Row]:
    """The instance's logged states after `seq`, in order (a scan of the log: the slow path)."""
    found = session.execute(
        select(*_COLUMNS)
        .where(_c.instance_id == instance_id, _c.seq > seq)
        .order_by(_c.seq)
    )
    return [Row(*row) for row in found]


def prune(tx: RawTransaction, below_id: int) -> int:
    """Drop the rows older than id `below_id` (never pass the newest id: see the module doc)."""
    return tx.execute(_PRUNE, {"below": below_id})


def newest_id(tx: RawTransaction) -> int:
    found = tx.first(_MAX_ID, {})
    return int(found[0] or 0) if found else 0


def oldest_id(tx: RawTransaction) -> int | None:
    found = tx.first(_MIN_ID, {})
    return None if found is None or found[0] is None else int(found[0])


def _rows(cursor: Any, dialect: Dialect, statement: Prepared,
          params: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Every row of `statement` on a caller's own DBAPI cursor, converted as `Prepared` does."""
    compiled = statement.compiled(dialect)
    cursor.execute(compiled.sql, compiled.bind(params))
    for row in cursor.fetchall():
        yield tuple(
            value if process is None else process(value)
            for process, value in zip(compiled.results, row, strict=True)
        )
