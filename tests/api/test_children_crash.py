"""Persistent children across processes: `backstate serve` killed with SIGKILL while a parent
and its child exchange events (some committed and not yet delivered, some delayed), then
restarted on the same database; and two processes on one database, a parent's events sent to
one and its child's to the other. Every message is delivered exactly once."""

from __future__ import annotations

import collections
import functools
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from runtime.store import Database
from runtime.store.models import Timer
from tests.api.test_crash import admin, start
from tests.support import waiting
from tests.support.children import CHILD, PARENT
from tests.support.client import Api

pytestmark = pytest.mark.slow

# The parent's delayed ping, short enough for a test and unnamed: each one is its own message.
CRASH_PARENT = PARENT.replace('{ delay: 60000, id: "later" }', "{ delay: 4000 }")


# Polled until it holds: see tests/support/waiting.py.
eventually = functools.partial(waiting.eventually, timeout=60.0, interval=0.05)


def history(api: Api, machine: str, slug: str) -> list[str]:
    out: list[str] = []
    cursor = ""
    while True:
        query = f"?cursor={cursor}" if cursor else ""
        page = api.ok("GET", f"/machines/{machine}/i/{slug}/events" + query)
        out += [t["event"]["type"] for t in page["transitions"]]
        if not page.get("cursor"):
            return out
        cursor = page["cursor"]


def pending_outbox(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(Timer)
                                      .where(Timer.delivery.is_not(None))) or 0)
    finally:
        db.dispose()


def exactly_once(api: Api) -> tuple[int, int, int]:
    """(the parent's pings, the child's pings, the parent's pongs), from their histories."""
    parent = collections.Counter(history(api, "parent", "p1"))
    child = collections.Counter(history(api, "child", "c1"))
    return parent["ping"] + parent["later"], child["ping"], parent["pong"]


def test_sigkill_between_commit_and_delivery_delivers_every_message_once(database_url: str):
    keys = admin(database_url)
    process, url = start(database_url)
    api = Api.for_key(url, keys.key_id, keys.secret)
    api.create_machine("parent", CRASH_PARENT)
    api.create_machine("child", CHILD)
    api.create_instance("parent", "p1")
    api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start", "name": "c1"}})
    eventually(lambda: api.request("GET", "/machines/child/i/c1/admin").status_code == 200)

    acked: collections.Counter[str] = collections.Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def flood(worker: int) -> None:
        with Api.for_key(url, keys.key_id, keys.secret) as mine:
            n = 0
            while not stop.is_set():
                n += 1
                event = "later" if n % 5 == 0 else "ping"
                try:
                    ok = mine.send("parent", "p1", event).status_code == 200
                except Exception:   # the server died under this request
                    return
                if ok:
                    with lock:
                        acked[event] += 1

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(flood, w) for w in range(4)]
        eventually(lambda: acked["ping"] >= 30 and acked["later"] >= 4)
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
        for f in futures:
            f.result()
    api.close()
    # The delayed pings acknowledged just before the kill are still in the parent's outbox:
    # committed, not delivered.
    assert pending_outbox(database_url) > 0

    process, url = start(database_url)
    try:
        with Api.for_key(url, keys.key_id, keys.secret) as api:
            eventually(lambda: pending_outbox(database_url) == 0
                       and len(set(exactly_once(api))) == 1,
                       describe=lambda: (exactly_once(api), pending_outbox(database_url)))
            sent, received, answered = exactly_once(api)
            assert sent >= acked["ping"] + acked["later"]   # acknowledged: committed
            assert received == sent and answered == sent
            ctx = api.ok("GET", "/machines/child/i/c1/admin")["context"]
            assert ctx["pings"] == received
            assert api.ok("GET", "/machines/parent/i/p1/admin")["context"]["pongs"] == answered
    finally:
        process.terminate()
        process.wait(20)


def test_a_parent_on_one_process_and_its_childs_events_on_another(database_url: str):
    keys = admin(database_url)
    one, url_one = start(database_url)
    two, url_two = start(database_url)
    try:
        with Api.for_key(url_one, keys.key_id, keys.secret) as first, \
                Api.for_key(url_two, keys.key_id, keys.secret) as second:
            first.create_machine("parent", PARENT)
            first.create_machine("child", CHILD)
            first.create_instance("parent", "p1")
            first.ok("POST", "/machines/parent/i/p1/events",
                     {"event": {"type": "start", "name": "c1"}})
            eventually(lambda: second.request("GET", "/machines/child/i/c1").status_code == 200)
            for n in range(10):
                (first if n % 2 else second).ok("POST", "/machines/parent/i/p1/events",
                                                {"event": "ping"})
            eventually(lambda: first.ok("GET", "/machines/parent/i/p1/admin")["context"]["pongs"]
                       == 10)
            second.ok("POST", "/machines/child/i/c1/events", {"event": "finish"})
            eventually(lambda: first.ok("GET", "/machines/parent/i/p1")["state"] == "finished")
            eventually(lambda: pending_outbox(database_url) == 0)
            assert collections.Counter(history(first, "child", "c1"))["ping"] == 10
            assert collections.Counter(history(second, "parent", "p1"))["pong"] == 10
    finally:
        for process in (one, two):
            process.terminate()
        for process in (one, two):
            process.wait(20)
