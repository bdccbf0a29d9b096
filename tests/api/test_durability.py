"""Durable means synced to disk before the answer: every acknowledged event's commit reached
the disk (SQLite syncs its WAL; PostgreSQL's commit waits for its WAL flush) unless the server
runs relaxed, which the operator must ask for."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from api.bootstrap import open_database
from api.settings import Settings
from tests.support.bundles import TOGGLER
from tests.support.client import Api
from tests.support.databases import sqlite_url
from tests.support.server import REPO, _wait_healthy, free_port

EVENTS = 20


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian's strace)")
def test_each_acknowledged_event_was_synced_to_disk_first(tmp_path: Path) -> None:
    """One client sending events one after another: no two commits can share a sync, so a
    durable server syncs the SQLite WAL at least once per acknowledged event."""
    url = sqlite_url(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "BACKSTATE_SECRET": "durability",
           "BACKSTATE_WORKERS": "1"}
    made = json.loads(subprocess.run(
        [sys.executable, "-m", "api.cli", "init", "--json", "--database-url", url],
        cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout)
    trace, port = tmp_path / "syncs.trace", free_port()
    server = subprocess.Popen(
        ["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace),
         sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--database-url", url,
         "--log-level", "warning"], cwd=REPO, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, server)
        with Api.for_key(base, made["keyId"], made["secret"]) as api:
            api.create_machine("toggler", TOGGLER)
            api.create_instance("toggler", "t")
            before = wal_syncs(trace)
            for _ in range(EVENTS):
                assert api.send("toggler", "t", "toggle").status_code == 200
            synced = wal_syncs(trace) - before
            assert synced >= EVENTS, trace.read_text()[-3000:]
    finally:
        os.killpg(server.pid, signal.SIGTERM)   # strace and the server under it
        server.wait(30)


def wal_syncs(trace: Path) -> int:
    # A sync another thread's line interrupts is written in two halves ("<unfinished ...>",
    # then "<... resumed>"): the first half names the file.
    return sum(1 for line in trace.read_text().splitlines()
               if re.search(r"f(data)?sync\(\d+<[^>]*-wal>", line))


@pytest.mark.parametrize(("durability", "sqlite", "postgres"),
                         [("sync", 2, "on"), ("relaxed", 1, "off")])
def test_the_durability_setting_reaches_every_connection(
        database_url: str, durability: str, sqlite: int, postgres: str) -> None:
    db = open_database(Settings(database_url=database_url, durability=durability))  # type: ignore[arg-type]
    try:
        query = "PRAGMA synchronous" if db.dialect == "sqlite" else "SHOW synchronous_commit"
        expected = sqlite if db.dialect == "sqlite" else postgres
        with db.raw_read() as tx:   # the hot path's own connections
            cursor = tx._cursor
            cursor.execute(query)
            assert cursor.fetchone()[0] == expected
        with db.read() as session:
            assert session.execute(text(query)).scalar_one() == expected
    finally:
        db.dispose()
