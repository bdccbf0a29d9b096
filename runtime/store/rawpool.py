"""DBAPI connections for the hot path's raw transactions (`prepared.raw_transaction`), kept out
of SQLAlchemy's pool.

Every event runs one to three raw transactions (the peek, the commit, now and then a lease).
A checkout and checkin through SQLAlchemy's pool costs CPU under the GIL (pool events, a
weakref finalizer, the queue's condition variable, the rollback that resets a returned
connection), and with `pool_pre_ping` PostgreSQL paid a round trip per checkout.
This pool is a stack under a lock. Its connections come from the engine, so the engine's
`connect` event has set them up (SQLite's pragmas), and are then detached from SQLAlchemy's
pool, so they do not count against its size. A connection idle for over `PING_AFTER_S` is
pinged before it is used again (a database restart closes idle connections); one a statement
reports disconnected is closed by the transaction that found it (`discard`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect

PING_AFTER_S = 5.0


class RawPool:
    """`prepare`: run on each new connection (after the engine's own set-up)."""

    def __init__(self, engine: Engine, size: int, *,
                 prepare: Callable[[Any], None] | None = None):
        self.dialect: Dialect = engine.dialect
        self._engine = engine
        self._size = size
        self._prepare = prepare
        self._idle: list[tuple[Any, float]] = []   # (DBAPI connection, when it was given back)
        self._lock = threading.Lock()

    def take(self) -> Any:
        """An idle connection (the most recently used), or a new one."""
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection, since = self._idle.pop()
            if time.monotonic() - since < PING_AFTER_S or self._alive(connection):
                return connection
            self.discard(connection)
        fairy = self._engine.raw_connection()
        fairy.detach()
        connection = fairy.dbapi_connection
        if self._prepare is not None:
            self._prepare(connection)
        return connection

    def give(self, connection: Any) -> None:
        """Return a connection with no transaction open."""
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append((connection, time.monotonic()))
                return
        self.discard(connection)

    def discard(self, connection: Any) -> None:
        with contextlib.suppress(Exception):   # broken already: closing is all there is to do
            connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            self.discard(connection)

    def _alive(self, connection: Any) -> bool:
        try:
            return bool(self.dialect.do_ping(connection))
        except self.dialect.loaded_dbapi.Error:
            return False
