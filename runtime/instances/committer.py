"""Group commit: commits of different steps that are ready together share one transaction and
one sync to disk.

A step thread hands its macrostep's write to `commit` and blocks until it is durable. The
first thread to find no transaction in progress leads: it takes every write queued at that
moment, writes them in one transaction, syncs once, and wakes the others; writes queued
meanwhile go to the next leader. Under no load a write is a batch of one, so nothing waits for
company; under load the sync (the cost of durability) is shared by every step that was ready.

Each write is still fenced on its own: the strategies check their condition before they write
(`runtime/store/commits.py`), so one that lost its lease, its compare-and-set or its timer
claim raises a ConflictError having written nothing, and fails alone. Any other failure (a
constraint, a lost connection, a failed sync, a conflict found after writing:
ChangedAfterWritesError) leaves the batch's outcome unknown or half written: it is rolled back
and every write of it is retried in a transaction of its own, so only a faulty write fails,
with its own error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime import metrics
from runtime.errors import ChangedAfterWritesError, ConflictError
from runtime.store import Database
from runtime.store.prepared import RawTransaction

Write = Callable[[RawTransaction], Any]
Outcome = tuple[Any, BaseException | None]


@dataclass
class _Queued:
    write: Write
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommitter:
    def __init__(self, db: Database):
        self._db = db
        self._ready = threading.Condition()
        self._queue: list[_Queued] = []
        self._writing = False
        self.batches = 0   # transactions committed, and the writes they held: for benchmarks
        self.writes = 0

    def commit(self, write: Write) -> Any:
        """Run `write` in a transaction shared with the writes queued with it; its result once
        durable. Raises `write`'s own error (having committed nothing of it)."""
        queued = _Queued(write)
        with self._ready:
            self._queue.append(queued)
            while self._writing and not queued.done:
                self._ready.wait()
            if queued.done:
                return queued.outcome()
            self._writing = True
            batch, self._queue = self._queue, []
        started = time.perf_counter()
        try:
            together = self._write(batch)
        finally:
            with self._ready:
                self._writing = False
                for item in batch:
                    item.done = True
                self._ready.notify_all()
        if together:  # counted once the others are on their way
            metrics.COMMITS.inc()
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.COMMIT_WRITES.inc(len(batch))
        return queued.outcome()

    def _write(self, batch: list[_Queued]) -> bool:
        """Write the batch; whether it committed as one transaction."""
        try:
            outcomes = self._together(batch)
        except BaseException:
            if len(batch) == 1:
                raise
            metrics.COMMIT_SPLITS.inc()
            for item in batch:
                self._alone(item)
            return False
        for item, (result, error) in zip(batch, outcomes, strict=True):
            item.result, item.error = result, error
        self.batches += 1
        self.writes += len(batch)
        return True

    def _together(self, batch: list[_Queued]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self._db.raw() as tx:
            for item in batch:
                try:
                    outcomes.append((item.write(tx), None))
                except ChangedAfterWritesError:
                    raise   # its writes are in the transaction: all roll back, each goes alone
                except ConflictError as exc:  # checked before writing: this write alone fails
                    outcomes.append((None, exc))
        return outcomes

    def _alone(self, item: _Queued) -> None:
        try:
            with self._db.raw() as tx:
                item.result = item.write(tx)
        except BaseException as exc:
            item.error = exc
