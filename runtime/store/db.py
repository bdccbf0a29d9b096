"""The database handle: engine set-up for SQLite and PostgreSQL, transactions, migrations.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Every SQLite write
transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front, so two writers
queue instead of failing when a read lock cannot be upgraded. Transactions are short by design
(no transaction is ever held open while a machine runs), so this costs little.

Within one process, SQLite writers queue on a Python lock (`_WriterGate`) rather than on
SQLite's busy handler: the busy handler polls with sleeps of up to 100 ms, and a writer that
waits for the GIL while holding the file lock made every other thread poll. The busy handler
still arbitrates between processes. Read-only transactions (`read`) use a plain deferred
`BEGIN`: in WAL mode readers never wait for the writer, so they skip the gate and the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: the key of the PostgreSQL advisory lock that serializes concurrent migrations.
_MIGRATION_LOCK_ID = 0x6B5E_57A7
# The execution option that makes a SQLite transaction start with a deferred `BEGIN`.
_READ_ONLY = "backstate_read_only"


class Database:
    """One per process: owns the engine and hands out short transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, busy_timeout_ms: int = 30_000):
        self.url = url
        self.engine = _create_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms)
        self._reader = self.engine.execution_options(**{_READ_ONLY: True})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        self._gate = _WriterGate(busy_timeout_ms / 1000) if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any exception."""
        with self._writing(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only (it must not write): on SQLite it takes no write lock."""
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (commits on success), for hot paths where
        the ORM's unit of work costs more than the statement."""
        with self._writing(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def begin_read(self) -> Iterator[Connection]:
        """A Core connection in a read-only transaction (see `read`)."""
        with self._reader.begin() as conn:
            yield conn

    def _writing(self) -> AbstractContextManager[object]:
        return nullcontext() if self._gate is None else self._gate

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to call from several processes."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str, *, pool_size: int, busy_timeout_ms: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True
    )


def _sqlite_engine(url: str, *, busy_timeout_ms: int) -> Engine:
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
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class _WriterGate:
    """One SQLite writer at a time in this process, waiting no longer than the busy timeout
    would have (a writer stuck that long fails as SQLite would: "database is locked")."""

    def __init__(self, timeout_s: float):
        self._lock = threading.Lock()
        self._timeout_s = timeout_s

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout_s):
            raise TimeoutError("database is locked: another write did not finish in time")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
