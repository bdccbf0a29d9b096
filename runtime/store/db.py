"""The database handle: engine set-up for SQLite and PostgreSQL, transactions, migrations.

SQLite's pragmas and writer queueing live in `sqlite.py`. Read-only transactions (`read`,
`raw_read`) take no write lock there; write transactions (`transaction`, `raw`) queue on its
`WriterGate`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from runtime.store.outages import unavailable
from runtime.store.prepared import RawTransaction, raw_transaction
from runtime.store.rawpool import RawPool
from runtime.store.sqlite import (
    READ_ONLY,
    Checkpointer,
    WriterGate,
    database_file,
    sqlite_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: the key of the PostgreSQL advisory lock that serializes concurrent migrations.
_MIGRATION_LOCK_ID = 0x6B5E_57A7
CHECKPOINT_S = 0.5  # SQLite: how often the WAL is copied back (see sqlite.Checkpointer)


class Database:
    """One per process: owns the engine and hands out short transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, busy_timeout_ms: int = 30_000,
                 durable: bool = True):
        """`durable`: a commit returns only once it is synced to disk (SQLite's
        `synchronous=FULL`, PostgreSQL's `synchronous_commit=on`); otherwise a power loss or an
        operating-system crash may lose the last commits a caller was told succeeded."""
        self.url = url
        self.durable = durable
        file = database_file(url) if make_url(url).get_backend_name() == "sqlite" else None
        self._checkpointer = Checkpointer(file, CHECKPOINT_S) if file else None
        auto_checkpoint = self._checkpointer is None
        self.engine = _create_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms,
                                     auto_checkpoint=auto_checkpoint, durable=durable)
        if self._checkpointer is not None:
            self._checkpointer.start()
        self._raw_pool = RawPool(self.engine, pool_size)
        # Bookkeeping that a crash may lose without harm (the leases: a lost one only looks
        # free or expired sooner, and every commit is fenced anyway) need not wait for a sync.
        self._unsynced_pool = RawPool(self.engine, pool_size, prepare=_unsynced)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        self._gate = WriterGate(url, busy_timeout_ms / 1000) if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # Each way in below raises UnavailableError when the database cannot be reached
    # (`outages.py`): a lost connection is no bug of the request's, and no reason to drop a
    # timer.

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any exception."""
        with _outages(), self._writing(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only (it must not write): on SQLite it takes no write lock."""
        with _outages(), self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def raw(self, *, autocommit: bool = False, synced: bool = True) -> Iterator[RawTransaction]:
        """A write transaction for `Prepared` statements on the DBAPI connection: the hot
        path's few statements without SQLAlchemy's per-execution cost (see `prepared.py`).
        `autocommit`: each statement commits alone (for single-statement writes). `synced`
        off: the commit does not wait for the disk even on a durable database (for writes a
        power loss may undo harmlessly); a later synced commit syncs it too."""
        begin = "BEGIN IMMEDIATE" if self._gate is not None else None
        pool = self._raw_pool if synced or not self.durable else self._unsynced_pool
        try:  # as `_outages()` does, without a context manager more on the hot path
            with (
                self._writing(),
                raw_transaction(pool, begin=begin, autocommit=autocommit) as transaction,
            ):
                yield transaction
        except Exception as exc:
            if (outage := unavailable(exc)) is not None:
                raise outage from exc
            raise

    @contextmanager
    def raw_read(self) -> Iterator[RawTransaction]:
        """Standalone `Prepared` reads (see `raw`): no transaction, no writer gate (on SQLite,
        in WAL mode, each statement reads a committed snapshot and never waits for a writer)."""
        try:
            with raw_transaction(self._raw_pool, begin=None, autocommit=True) as transaction:
                yield transaction
        except Exception as exc:
            if (outage := unavailable(exc)) is not None:
                raise outage from exc
            raise

    def _writing(self) -> AbstractContextManager[object]:
        return nullcontext() if self._gate is None else self._gate

    def schema_current(self) -> tuple[bool, str]:
        """Whether the schema is at the newest revision this code knows, and a word on it.
        Raises UnavailableError when the database cannot be reached."""
        heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
        with _outages(), self.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        if current == heads:
            return True, f"schema at {', '.join(sorted(heads))}"
        return False, (f"schema at {', '.join(sorted(current)) or 'nothing'}, "
                       f"this server needs {', '.join(sorted(heads))}")

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to call from several processes."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._raw_pool.close()
        self._unsynced_pool.close()
        self.engine.dispose()
        if self._gate is not None:
            self._gate.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextmanager
def _outages() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if (outage := unavailable(exc)) is not None:
            raise outage from exc
        raise


def _create_engine(
    url: str, *, pool_size: int, busy_timeout_ms: int, auto_checkpoint: bool, durable: bool
) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sqlite_engine(url, busy_timeout_ms=busy_timeout_ms,
                             auto_checkpoint=auto_checkpoint, durable=durable)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(
        parsed, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True
    )
    if not durable:
        event.listen(engine, "connect", _relaxed_postgres)
    return engine


def _unsynced(dbapi_conn: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        if isinstance(dbapi_conn, sqlite3.Connection):
            cursor.execute("PRAGMA synchronous=NORMAL")
        else:
            cursor.execute("SET synchronous_commit TO off")
            dbapi_conn.commit()
    finally:
        cursor.close()


def _relaxed_postgres(dbapi_conn: Any, _record: Any) -> None:
    # The server acknowledges a commit before its WAL reaches the disk; a crash of the
    # PostgreSQL server (not of backstate) may lose the last ones, never corrupt anything.
    with dbapi_conn.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_conn.commit()
