"""Other processes' commits on one SQLite file: the change log, tailed by id.

SQLite serializes writers, so the log's ids grow in commit order and a reader that has seen id
N has seen every state committed before it. One thread per process with watchers asks SQLite
every `poll_s` whether anything was committed since it last looked (`PRAGMA data_version`, a
read of the WAL index in shared memory: a few microseconds, no table read), and only then reads
the rows after the last id it saw; the rows of watched instances go to the hub. Why not a
socket among the processes: they need not know each other (`backstate serve` twice on one file
works), and a state committed by a process that then died is still in the log (measured in
bench/FIGURES.md).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from runtime.realtime.change import Change
from runtime.realtime.hub import Hub
from runtime.store import Database
from runtime.store import changes as change_rows

log = logging.getLogger("backstate.realtime")
BATCH = 500


class SqliteTail:
    def __init__(self, hub: Hub, db: Database, *, poll_s: float):
        self._hub = hub
        self._db = db
        self._poll_s = poll_s
        self._connection: Any = None
        self._last = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="realtime-tail", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> None:
        fairy = self._db.engine.raw_connection()  # with the engine's pragmas (WAL, timeout)
        fairy.detach()
        self._connection = fairy.dbapi_connection
        cursor = self._connection.cursor()
        self._last = change_rows.max_id(cursor, self._db.engine.dialect)
        self._version = self._data_version(cursor)
        cursor.close()

    def _run(self) -> None:
        cursor = self._connection.cursor()
        try:
            while not self._stop.wait(self._poll_s):
                try:
                    self._look(cursor)
                except Exception:  # e.g. the file is briefly locked: the next look retries
                    log.exception("realtime: reading the change log failed")
        finally:
            cursor.close()

    def _look(self, cursor: Any) -> None:
        version = self._data_version(cursor)
        if version == self._version:
            return
        self._version = version
        while True:
            rows = change_rows.after(cursor, self._db.engine.dialect, self._last, BATCH)
            if not rows:
                return
            self._last = rows[-1].id
            wanted = [Change.logged(row) for row in rows
                      if self._hub.watched(row.instance_id, row.seq)]
            if wanted and self._loop is not None:
                self._loop.call_soon_threadsafe(self._hub.deliver, wanted)
            if len(rows) < BATCH:
                return

    @staticmethod
    def _data_version(cursor: Any) -> int:
        cursor.execute("PRAGMA data_version")
        return int(cursor.fetchone()[0])
