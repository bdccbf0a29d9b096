"""Storing log entries off the hot path, and keeping their table bounded.

A step hands its entries over (`__call__`) and goes on: they wait in a buffer of bounded size
until the writer's thread stores them, every `flush_s` (sooner when the buffer is half full), in
transactions of their own, never in a commit's. A burst that does not fit the buffer (the
machines print faster than the database takes the lines) is dropped, not waited for, and
counted: the next write adds one stderr entry per instance saying how many lines were lost.

The same thread prunes the table every `prune_s`: entries older than `max_age_s`, and each
org's entries beyond its newest `max_rows_per_org`, in short batches. A machine that logs in a
loop thus fills at most its org's share, and only until the next pruning.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from runtime.clock import Clock
from runtime.logs.entries import RUNTIME_PREFIX, LogEntry, LogOrigin
from runtime.store import Database
from runtime.store import logs as log_rows

log = logging.getLogger("backstate.logs")
WRITE_BATCH = 1000   # entries per transaction


@dataclass(frozen=True)
class Retention:
    max_age_s: float = 7 * 24 * 3600     # 0: no age limit
    max_rows_per_org: int = 100_000      # 0: no row limit
    prune_s: float = 60.0


class LogWriter:
    def __init__(self, db: Database, clock: Clock, *, buffer_bytes: int = 16 << 20,
                 flush_s: float = 0.2, retention: Retention | None = None):
        self._db = db
        self._clock = clock
        self._buffer_bytes = buffer_bytes
        self._flush_s = flush_s
        self._retention = retention or Retention()
        self._queue: deque[LogEntry] = deque()
        self._queued_bytes = 0
        self._dropped: dict[LogOrigin, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self.written = 0        # entries stored
        self.dropped = 0        # lines dropped (buffer full, or a write that failed)

    # --- the sink ------------------------------------------------------------------------

    def __call__(self, entries: list[LogEntry]) -> None:
        """Queue `entries` for storage; never blocks (what does not fit is counted, dropped)."""
        with self._lock:
            for entry in entries:
                size = len(entry.text)
                if self._queued_bytes + size > self._buffer_bytes:
                    self._dropped[entry.origin] = self._dropped.get(entry.origin, 0) + entry.lines
                    self.dropped += entry.lines
                    continue
                self._queue.append(entry)
                self._queued_bytes += size
            if self._queued_bytes * 2 > self._buffer_bytes:
                self._wake.set()

    # --- life ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Store what is queued, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        next_prune = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self._flush_s)
            self._wake.clear()
            self.flush()
            if time.monotonic() >= next_prune:
                self.prune()
                next_prune = time.monotonic() + self._retention.prune_s
        self.flush()

    # --- writing -------------------------------------------------------------------------

    def flush(self) -> None:
        """Store everything queued now (and the markers of what was dropped)."""
        with self._lock:
            batch, self._queue, self._queued_bytes = list(self._queue), deque(), 0
            dropped, self._dropped = self._dropped, {}
        batch += [self._marker(origin, lines) for origin, lines in dropped.items()]
        for start in range(0, len(batch), WRITE_BATCH):
            self._write(batch[start:start + WRITE_BATCH])

    def _write(self, entries: list[LogEntry]) -> None:
        rows = [log_rows.NewEntry(e.origin.org_id, e.ts_ms, e.origin.machine, e.origin.instance,
                                  e.origin.version_id, e.stream, e.text) for e in entries]
        try:
            with self._db.transaction() as session:
                log_rows.insert_many(session, rows)
        except Exception:  # the database is unavailable: these are lost, and counted
            lost = sum(entry.lines for entry in entries)
            self.dropped += lost
            log.exception("storing %d machine log line(s) failed; they are lost", lost)
            return
        self.written += len(entries)

    def _marker(self, origin: LogOrigin, lines: int) -> LogEntry:
        text = (f"{RUNTIME_PREFIX}{lines} log line(s) dropped: the machine printed faster than "
                "the server could store its output")
        return LogEntry(origin, self._clock.now_ms(), "stderr", text)

    # --- retention -----------------------------------------------------------------------

    def prune(self) -> int:
        """Drop entries beyond the retention now; how many."""
        dropped = 0
        try:
            with self._db.read() as session:
                orgs = log_rows.orgs(session)
            for org_id in orgs:
                dropped += self._prune_org(org_id)
        except Exception:
            log.exception("pruning machine logs failed; the next round retries")
        return dropped

    def _prune_org(self, org_id: uuid.UUID) -> int:
        retention, dropped = self._retention, 0
        if retention.max_age_s > 0:
            cutoff = self._clock.now_ms() - int(retention.max_age_s * 1000)
            dropped += self._delete_while(lambda s: log_rows.older_than(s, org_id, cutoff))
        if retention.max_rows_per_org > 0:
            keep = retention.max_rows_per_org
            dropped += self._delete_while(lambda s: log_rows.beyond_newest(s, org_id, keep))
        return dropped

    def _delete_while(self, select_ids: Callable[[Session], list[int]]) -> int:
        """Delete batches of ids `select_ids` finds until it finds less than a batch."""
        deleted = 0
        while True:
            with self._db.transaction() as session:
                ids = select_ids(session)
                if ids:
                    log_rows.delete_ids(session, ids)
            deleted += len(ids)
            if len(ids) < log_rows.PRUNE_BATCH:
                return deleted
