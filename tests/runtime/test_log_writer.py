"""The log writer on a real database (SQLite, and PostgreSQL when configured): entries grouped
as a step printed them, a burst beyond the buffer dropped and counted (never waited for), and
the retention by age and by rows per org."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from runtime.clock import FakeClock
from runtime.logs import LogOrigin, LogWriter, Retention
from runtime.logs.entries import entries
from runtime.results import LogLine
from runtime.store import Database
from runtime.store.models import MachineLog, Org

NOW_MS = 1_800_000_000_000
DAY_MS = 86_400_000


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def org(db: Database) -> LogOrigin:
    org_id = uuid.uuid4()
    with db.transaction() as s:
        s.add(Org(id=org_id, name="o", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    return LogOrigin(org_id, "m", "i", uuid.uuid4())


def stored(db: Database, origin: LogOrigin | None = None) -> list[MachineLog]:
    with db.read() as s:
        query = select(MachineLog).order_by(MachineLog.ts_ms, MachineLog.id)
        if origin is not None:
            query = query.where(MachineLog.org_id == origin.org_id)
        return list(s.scalars(query))


def test_consecutive_lines_of_one_stream_and_millisecond_share_an_entry() -> None:
    origin = LogOrigin(uuid.uuid4(), "m", "i", None)
    lines = [LogLine(1, "stdout", "a"), LogLine(1, "stdout", "b"), LogLine(1, "stderr", "c"),
             LogLine(1, "stdout", "d"), LogLine(2, "stdout", "e")]
    assert [(e.ts_ms, e.stream, e.text) for e in entries(origin, lines)] == [
        (1, "stdout", "a\nb"), (1, "stderr", "c"), (1, "stdout", "d"), (2, "stdout", "e")]
    huge = [LogLine(1, "stdout", "x" * 40_000), LogLine(1, "stdout", "y" * 40_000)]
    assert len(entries(origin, huge)) == 2, "an entry stays under 64 KiB"


def test_a_burst_beyond_the_buffer_is_dropped_and_counted(db: Database) -> None:
    origin = org(db)
    writer = LogWriter(db, FakeClock(NOW_MS), buffer_bytes=1000)
    burst = [LogLine(NOW_MS, "stdout", f"{n:099d}") for n in range(30)]   # 3000 bytes
    for line in burst:
        writer(entries(origin, [line]))       # returns at once: nothing waits for the database
    writer.flush()
    rows = stored(db, origin)
    kept, marker = rows[:-1], rows[-1]
    assert [r.text for r in kept] == [line.text for line in burst[:10]]
    assert marker.stream == "stderr"
    assert marker.text == ("[backstate] 20 log line(s) dropped: the machine printed faster than "
                           "the server could store its output")
    assert (writer.written, writer.dropped) == (11, 20)


def test_retention_drops_old_entries_and_keeps_each_org_to_its_share(db: Database) -> None:
    chatty, quiet = org(db), org(db)
    clock = FakeClock(NOW_MS)
    writer = LogWriter(db, clock, retention=Retention(max_age_s=7 * 86_400,
                                                      max_rows_per_org=12))
    old = [LogLine(NOW_MS - 8 * DAY_MS + n, "stdout", f"old {n}") for n in range(5)]
    recent = [LogLine(NOW_MS - n, "stdout", f"recent {n}") for n in range(20)]
    writer(entries(chatty, old + recent[::-1]))
    writer(entries(quiet, [LogLine(NOW_MS - 8 * DAY_MS, "stdout", "ancient"),
                           LogLine(NOW_MS, "stdout", "new")]))
    writer.flush()
    assert writer.prune() == 5 + 8 + 1
    assert [r.text for r in stored(db, chatty)] == [f"recent {n}" for n in range(11, -1, -1)]
    assert [r.text for r in stored(db, quiet)] == ["new"]
