"""SQLite specifics: the engine's pragmas and how its writers queue.

SQLite runs in WAL mode with a busy timeout and foreign keys on, and syncs the WAL at every
commit unless the server runs relaxed. Every write transaction starts
with `BEGIN IMMEDIATE`: it takes the write lock up front, so two writers queue instead of
failing when a read lock cannot be upgraded. Read-only transactions start with a plain deferred
`BEGIN`: in WAL mode readers never wait for the writer.

WAL checkpoints run on a thread of their own (`Checkpointer`), not in the commit that happens to
cross SQLite's 1,000-page threshold: that commit held the writer gate while it copied the WAL
back and synced both files, and every writer of every process waited behind it (a latency
spike every few hundred events). A PASSIVE checkpoint waits for nobody and blocks no writer.

Writers queue on `WriterGate` before they begin, not on SQLite's busy handler. The busy handler
polls with sleeps growing to 100 ms, and under load a writer that waits for the GIL while it
holds the file lock kept every other writer polling: p99 latencies of seconds. The gate is a
thread lock (one writer per process) and, for a database file, an exclusive `flock` on
`<database>-writer` (one writer across processes); both wake the next writer as soon as the
lock is free. SQLite's own lock and busy timeout still guard against writers outside the gate.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

try:
    import fcntl
except ImportError:  # not on Windows: processes then queue on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

# The execution option that makes a transaction start with a deferred `BEGIN`.
READ_ONLY = "backstate_read_only"
log = logging.getLogger("backstate.store")


def database_file(url: str) -> str | None:
    """The database's file, or None for an in-memory database."""
    path = make_url(url).database
    if not path or path == ":memory:" or "mode=memory" in url:
        return None
    return path


def sqlite_engine(url: str, *, busy_timeout_ms: int, auto_checkpoint: bool = True,
                  durable: bool = True) -> Engine:
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
        # FULL: every commit syncs the WAL before it returns. NORMAL syncs only at checkpoints:
        # a power loss or an operating-system crash may lose the last commits (a crash of the
        # process alone loses nothing), so it is only the relaxed mode's (see `Durability`).
        cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        if not auto_checkpoint:  # a `Checkpointer` does it
            cursor.execute("PRAGMA wal_autocheckpoint=0")
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
        path = database_file(url)
        on_disk = fcntl is not None and path is not None
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


class Checkpointer:
    """Copies the WAL back into the database file every `interval_s`, on its own thread and
    connection, without waiting for readers or writers (PASSIVE). Several processes may each
    run one: SQLite lets one checkpoint run at a time, the others just find nothing to do."""

    def __init__(self, path: str, interval_s: float):
        self._path = path
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> tuple[int, int]:
        """One checkpoint: (frames in the WAL, frames now copied back)."""
        # mode=rw: never create the file (it may have been removed, e.g. in tests).
        conn = sqlite3.connect(f"file:{quote(self._path)}?mode=rw", uri=True, timeout=1.0)
        try:
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
        return int(frames), int(copied)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.run_once()
            except sqlite3.Error:  # e.g. the file is being replaced: the next round retries
                log.warning("WAL checkpoint failed", exc_info=True)
