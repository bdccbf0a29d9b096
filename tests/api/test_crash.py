"""Crash safety: a real `backstate serve` process is killed with SIGKILL in the middle of a load
of events, with timers pending and a service waiting on a fetch, then a new process is started
on the same database. Afterwards:

* every acknowledged event appears exactly once in its instance's transition history (events
  in flight at the kill may appear once or not at all, never twice);
* every timer armed by an acknowledged event fires exactly once;
* no instance is corrupt (its context agrees with its history);
* the service cut off by the crash gets its error.platform event before the next event.
"""

from __future__ import annotations

import collections
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.client import Admin, Api
from tests.support.server import REPO, _wait_healthy, free_port

pytestmark = pytest.mark.slow

CRASHY = """
import { createMachine, assign, send, pure } from "npm:xstate";
export default createMachine({
  id: "crashy", predictableActionArguments: true, initial: "live",
  context: { count: 0, ticks: 0 },
  states: {
    live: { on: {
      inc: { actions: assign({ count: (c) => c.count + 1 }) },
      arm: { actions: pure((c, e) =>
        send({ type: "tick", id: e.id }, { delay: e.delay, id: e.id })) },
      tick: { actions: assign({ ticks: (c) => c.ticks + 1 }) },
      hang: "waiting",
    } },
    waiting: {
      invoke: {
        src: () => fetch(HANG_URL).then((r) => r.text()),
        onDone: "live",
        onError: "failed",
      },
    },
    failed: { on: { poke: "live" } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A loopback server that never answers in time: the service is still waiting at the kill."""

    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            done.wait(30)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hang"
    # Close the listening socket too: a handler still waiting would otherwise drop the last
    # reference to the server in some later test, which then fails on the ResourceWarning.
    done.set()
    server.shutdown()
    server.server_close()


def start(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # Short leases and timer claims: what the dead process held is free again within seconds.
    env = {**os.environ, "PYTHONPATH": str(REPO), "BACKSTATE_FETCH_ALLOW_LOOPBACK": "true",
           "BACKSTATE_WORKERS": "1",
           "BACKSTATE_TIMER_POLL_S": "0.1", "BACKSTATE_SECRET": "crash-test-secret",
           "BACKSTATE_LEASE_TTL_S": "3", "BACKSTATE_TIMER_CLAIM_S": "2"}
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                                "--database-url", database_url, "--log-level", "warning"],
                               cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, process)
    return process, url


def admin(database_url: str) -> Admin:
    out = subprocess.run([sys.executable, "-m", "api.cli", "init", "--json", "--database-url",
                          database_url], cwd=REPO, check=True, capture_output=True, text=True,
                         env={**os.environ, "BACKSTATE_SECRET": "crash-test-secret"})
    import json
    made = json.loads(out.stdout)
    return Admin(made["orgId"], made["keyId"], made["secret"])


def transitions(api: Api, slug: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = f"?cursor={cursor}" if cursor else ""
        page = api.ok("GET", f"/machines/crashy/i/{slug}/events" + query)
        out += page["transitions"]
        if not page.get("cursor"):
            return out
        cursor = page["cursor"]


def test_sigkill_mid_load_loses_nothing_acknowledged_and_fires_every_timer_once(
        tmp_path: Path, hanging_url: str):
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    keys = admin(db)
    instances = [f"c{i}" for i in range(6)]
    acked_incs: dict[str, list[str]] = collections.defaultdict(list)
    acked_timers: dict[str, list[str]] = collections.defaultdict(list)

    process, url = start(db)
    api = Api.for_key(url, keys.key_id, keys.secret)
    api.create_machine("crashy", CRASHY.replace("HANG_URL", repr(hanging_url)))
    for slug in instances:
        api.create_instance("crashy", slug)
    hanger = threading.Thread(target=lambda: _send(url, keys, "c0", {"type": "hang"}), daemon=True)
    hanger.start()
    time.sleep(0.5)                                  # c0 is now waiting on its fetch

    stop = threading.Event()

    def load(worker: int) -> None:
        n = 0
        while not stop.is_set():
            slug = instances[1 + (worker + n) % (len(instances) - 1)]
            n += 1
            eid = f"w{worker}-{n}"
            event = ({"type": "arm", "id": eid, "delay": 300 + (n % 7) * 250} if n % 3 == 0
                     else {"type": "inc", "id": eid})
            if _send(url, keys, slug, event):
                (acked_timers if event["type"] == "arm" else acked_incs)[slug].append(eid)

    def enough() -> bool:
        return (sum(map(len, acked_incs.values())) >= 20
                and sum(map(len, acked_timers.values())) >= 6)

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(load, w) for w in range(6)]
        deadline = time.monotonic() + 60
        while not enough() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)          # mid-load, timers pending, c0 mid-fetch
        process.wait()
        stop.set()
        for f in futures:
            f.result()
    api.close()
    assert enough(), "the load did not get going before the kill"

    process, url = start(db)
    api = Api.for_key(url, keys.key_id, keys.secret)
    try:
        deadline = time.monotonic() + 30
        while True:                                  # every armed timer is due within ~2 s
            histories = {slug: transitions(api, slug) for slug in instances[1:]}
            fired = {e["event"].get("id") for h in histories.values() for e in h
                     if e["event"]["type"] == "tick"}
            if all(t in fired for ts in acked_timers.values() for t in ts):
                break
            assert time.monotonic() < deadline, "not every acknowledged timer fired"
            time.sleep(0.2)
        time.sleep(3)                                # would anything fire twice?
        for slug in instances[1:]:
            history = transitions(api, slug)
            ids = collections.Counter(e["event"].get("id") for e in history
                                      if e["event"]["type"] in ("inc", "tick"))
            assert all(ids[e] == 1 for e in acked_incs[slug]), \
                f"{slug}: an acknowledged event is missing or doubled"
            assert all(ids[t] == 1 for t in acked_timers[slug]), \
                f"{slug}: a timer fired other than once"
            assert max(ids.values(), default=1) == 1, f"{slug}: something was applied twice"
            ctx = api.ok("GET", f"/machines/crashy/i/{slug}/admin")["context"]
            assert ctx["count"] == sum(1 for e in history if e["event"]["type"] == "inc")
            assert ctx["ticks"] == sum(1 for e in history if e["event"]["type"] == "tick")
        # c0's fetch died with the process: its error comes before the next event.
        api.ok("POST", "/machines/crashy/i/c0/events", {"event": "poke"})
        tail = [e["event"]["type"] for e in transitions(api, "c0")][-3:]
        assert tail[0] == "hang" and tail[1].startswith("error.platform.crashy.waiting")
        assert tail[2] == "poke"
        assert api.ok("GET", "/machines/crashy/i/c0")["state"] == "live"
    finally:
        api.close()
        process.terminate()
        process.wait(20)


def _send(url: str, keys: Admin, slug: str, event: dict[str, Any]) -> bool:
    """True if the server acknowledged the event (200)."""
    try:
        with Api.for_key(url, keys.key_id, keys.secret) as api:
            return api.request("POST", f"/machines/crashy/i/{slug}/events",
                               {"event": event}).status_code == 200
    except httpx.HTTPError:
        return False
