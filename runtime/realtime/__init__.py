"""Real time: every committed state of an instance, pushed to its subscribers in order,
whichever process committed it.

`hub.py` keeps each process's watched instances (topics) and puts their states in order;
`sqlite.py` and `postgres.py` bring other processes' commits (a tail of the change log, or
`LISTEN`); `readers.py` runs `allowRead` for each state a subscriber is sent, once per auth
context; `changelog.py` keeps the change log short. The WebSocket protocol itself is the API's
(`api/realtime/`).
"""

from __future__ import annotations

from runtime.instances.feed import Feed
from runtime.realtime.change import Change, Verdict
from runtime.realtime.changelog import ChangeLogPruner
from runtime.realtime.hub import Hub, Source, Topic, Watcher
from runtime.realtime.postgres import PostgresListener
from runtime.realtime.readers import Readers
from runtime.realtime.sqlite import SqliteTail
from runtime.store import Database

__all__ = ["Change", "ChangeLogPruner", "Hub", "Readers", "Source", "Topic", "Verdict",
           "Watcher", "build_hub"]


def build_hub(db: Database, feed: Feed, *, poll_s: float) -> Hub:
    """The hub for `db`: SQLite processes tail the change log, PostgreSQL ones listen."""
    if db.dialect == "sqlite":
        return Hub(db, feed, lambda hub: SqliteTail(hub, db, poll_s=poll_s))
    return Hub(db, feed, lambda hub: PostgresListener(hub, db))
