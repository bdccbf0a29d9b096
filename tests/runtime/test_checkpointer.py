"""SQLite's WAL is copied back by the checkpointer thread, never by a committing writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from runtime.store.db import Database
from runtime.store.sqlite import Checkpointer


def test_writers_do_not_checkpoint_and_the_checkpointer_copies_the_wal_back(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path}/c.db")
    try:
        with db.transaction() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
            conn.execute(text("CREATE TABLE t (x TEXT)"))
        for i in range(300):  # ~300 frames: under the old 1,000-frame threshold either way
            with db.transaction() as conn:
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "x" * 2000 + str(i)})
        checkpointer = Checkpointer(str(tmp_path / "c.db"), interval_s=60)
        frames, copied = checkpointer.run_once()
        assert frames >= 300 and copied == frames
        with db.transaction() as conn:  # the next writer starts the WAL over
            conn.execute(text("INSERT INTO t VALUES ('again')"))
        frames, _ = checkpointer.run_once()
        assert frames < 10
    finally:
        db.dispose()


def test_the_checkpointer_never_creates_a_database(tmp_path: Path) -> None:
    checkpointer = Checkpointer(str(tmp_path / "gone.db"), interval_s=60)
    with pytest.raises(sqlite3.OperationalError):
        checkpointer.run_once()
    assert not (tmp_path / "gone.db").exists()
