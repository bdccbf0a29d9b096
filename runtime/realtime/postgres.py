"""Other processes' commits on PostgreSQL: `LISTEN` for the change log's notifications.

A trigger on `state_changes` (migration 0008) notifies `id instance seq` in the committing
transaction, so notifications arrive in commit order, only for commits, whichever process or
node made them; the payload stays tiny whatever the state's size (NOTIFY payloads are limited
to 8000 bytes), and the state itself is read from the log by id. A thread per process with
watchers holds one connection that listens, and reads the rows of watched instances on it. If
that connection drops, notifications are lost meanwhile: after reconnecting, the hub reads what
each topic may have missed from the log (`Hub.resync`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import uuid
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from runtime.realtime.change import Change
from runtime.realtime.hub import Hub
from runtime.store import Database
from runtime.store import changes as change_rows

log = logging.getLogger("backstate.realtime")
WAIT_S = 0.5          # how often the thread looks up from waiting (to notice a stop)
RECONNECT_S = 1.0


def channel_for(schema: str) -> str:
    """The trigger's channel for the log in `schema` (see migration 0008)."""
    return "backstate_" + hashlib.md5(schema.encode()).hexdigest()[:16]


class PostgresListener:
    def __init__(self, hub: Hub, db: Database):
        self._hub = hub
        self._db = db
        url = make_url(db.url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connection: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connection = await asyncio.to_thread(self._connect)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="realtime-listen", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _connect(self) -> Any:
        connection = psycopg.connect(self._conninfo, autocommit=True)
        found = connection.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = 'state_changes'::regclass").fetchone()
        assert found is not None, "the change log is created by migration 0008"
        connection.execute(f'LISTEN "{channel_for(found[0])}"')
        return connection

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._receive()
                except psycopg.Error:
                    log.warning("realtime: the PostgreSQL listener lost its connection; "
                                "reconnecting", exc_info=True)
                    self._reconnect()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _receive(self) -> None:
        """Wait for a notification, take every other one already there, and read the watched
        ones' states in one query."""
        ids: list[int] = []
        for timeout, stop_after in ((WAIT_S, 1), (0.0, None)):
            for notify in self._connection.notifies(timeout=timeout, stop_after=stop_after):
                id_, instance, seq = notify.payload.split()
                if self._hub.watched(uuid.UUID(instance), int(seq)):
                    ids.append(int(id_))
        if not ids:
            return
        with self._connection.cursor() as cursor:
            rows = change_rows.by_ids(cursor, self._db.engine.dialect, ids)
        if rows and self._loop is not None:
            self._loop.call_soon_threadsafe(self._hub.deliver, [Change.logged(r) for r in rows])

    def _reconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        while not self._stop.wait(RECONNECT_S):
            try:
                self._connection = self._connect()
            except psycopg.Error:
                continue
            if self._loop is not None:  # what was notified while nobody listened
                self._loop.call_soon_threadsafe(self._hub.resync_soon)
            return
