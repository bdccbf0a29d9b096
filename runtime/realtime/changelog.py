"""Keeping the change log short: it only bridges the moment between a commit and the other
processes' reading of it (milliseconds), so a state is dropped once it is `retention_s` old.

The log itself is written by triggers on `instances` (migration 0008); `check_logged` makes
sure they are there when the server starts. Every `retention_s`, each process notes the newest
id and drops the rows below the id it noted the round before, a few thousand per transaction (a
long delete would hold SQLite's one writer up). The row noted is never dropped, so the log is
never empty and SQLite never hands out an id a reader has passed. Several processes doing this
at once only repeat each other.
"""

from __future__ import annotations

import asyncio
import logging

from runtime.store import Database
from runtime.store import changes as change_rows

log = logging.getLogger("backstate.realtime")
BATCH = 5000


def check_logged(db: Database) -> None:
    """Refuse to serve real time silently broken: the triggers that log each state must be
    there (see migration 0008)."""
    with db.read() as session:
        missing = change_rows.missing_triggers(session)
    if missing:
        raise RuntimeError(
            f"the change log's triggers on `instances` are missing ({', '.join(missing)}): a "
            "migration that rebuilt the table dropped them; it must create them again "
            "(runtime/store/migrations/versions/0008_realtime.py)")


class ChangeLogPruner:
    def __init__(self, db: Database, retention_s: float):
        self._db = db
        self._retention_s = retention_s
        self.pruned = 0

    async def run(self) -> None:
        mark: int | None = None
        while True:
            try:
                newest = await asyncio.to_thread(self._newest)
                if mark is not None:
                    await asyncio.to_thread(self.prune_below, mark)
                mark = newest
            except Exception:  # the database may be briefly unavailable: next round
                log.exception("realtime: pruning the change log failed")
            await asyncio.sleep(self._retention_s)

    def _newest(self) -> int:
        with self._db.raw_read() as tx:
            return change_rows.newest_id(tx)

    def prune_below(self, below: int) -> None:
        """Drop the rows with ids below `below` (never the newest row), in batches."""
        while True:
            with self._db.raw_read() as tx:
                oldest = change_rows.oldest_id(tx)
                below = min(below, change_rows.newest_id(tx))
            if oldest is None or oldest >= below:
                return
            with self._db.raw() as tx:
                self.pruned += change_rows.prune(tx, min(below, oldest + BATCH))
