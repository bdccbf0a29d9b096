"""SQLite specifics: the engine's pragmas and how its writers queue.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Every write transaction starts
with `BEGIN IMMEDIATE`: it takes the write lock up front, so two writers queue instead of
failing when a read lock cannot be upgraded. Read-only transactions start with a plain deferred
`BEGIN`: in WAL mode readers never wait for the writer.

Writers queue on `WriterGate` before they begin, not on SQLite's busy handler. The busy handler
polls with sleeps growing to 100 ms, and under load a writer that waits for the GIL while it
holds the file lock kept every other writer polling: p99 latencies of seconds. The gate is a
thread lock (one writer per process) and, for a database file, an exclusive `flock` on
`<database>-writer` (one writer across processes); both wake the next writer as soon as the
lock is free. SQLite's own lock and busy timeout still guard against writers outside the gate.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

try:
    import fcntl
except ImportError:  # not on Windows: processes then queue on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

# The execution option that makes a transaction start with a deferred `BEGIN`.
READ_ONLY = "backstate_read_only"


def sqlite_engine(url: str, *, busy_timeout_ms: int) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=20,
        max_overflow=40,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class WriterGate:
    """One writer at a time: in this process (waiting no longer than the busy timeout would
    have; a writer stuck that long fails as SQLite would, "database is locked"), then across
    processes. A process stopped mid-write (not dead: its locks die with it) holds up the other
    processes' writers until it continues, as SQLite's lock would."""

    def __init__(self, url: str, timeout_s: float):
        self._lock = threading.Lock()
        self._timeout_s = timeout_s
        path = make_url(url).database
        on_disk = fcntl is not None and path and path != ":memory:" and "mode=memory" not in url
        self._fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600) if on_disk else None

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout_s):
            raise TimeoutError("database is locked: another write did not finish in time")
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
