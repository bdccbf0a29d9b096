"""Events that queue for one instance run together: one step, one commit, and still one
transition per event, each caller answered with its own state, a failing event failing alone."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from api.app import build_runtime, create_app
from api.bootstrap import init
from api.settings import Settings
from runtime.clock import SystemClock
from tests.conftest import TEST_SECRET
from tests.support import waiting
from tests.support.client import Api
from tests.support.server import run_server

HOT = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "hot", predictableActionArguments: true, initial: "idle",
  context: { n: 0, public: { n: 0 } },
  states: {
    idle: { on: {
      inc: { actions: assign((c) => ({ n: c.n + 1, public: { n: c.n + 1 } })) },
      boom: { actions: () => { throw new Error("boom"); } },
      hold: "holding",
    } },
    holding: { invoke: { src: () => fetch("__URL__").then((r) => r.text()), onDone: "idle" } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


# Polled until it holds: see tests/support/waiting.py.
eventually = functools.partial(waiting.eventually, interval=0.005)


@pytest.fixture
def gate() -> Iterator[tuple[str, threading.Event, list[str]]]:
    """A loopback URL whose answer waits until the test opens the gate."""
    opened, arrived = threading.Event(), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.append(self.path)
            opened.wait(60)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/slow", opened, arrived
    opened.set()
    server.shutdown()
    server.server_close()


def test_queued_events_run_as_one_step_each_answered_with_its_own_state(
        database_url: str, gate: tuple[str, threading.Event, list[str]]) -> None:
    url, opened, arrived = gate
    settings = Settings(database_url=database_url, secret=TEST_SECRET, window_s=60,
                        fetch_allow_loopback=True)
    app = create_app(settings, runtime=build_runtime(settings, SystemClock()))
    made = init(settings, app.state.services.db)
    core = app.state.services.core
    events = [{"type": "inc"}] * 7 + [{"type": "boom"}] + [{"type": "inc"}] * 7
    with run_server(app) as base, ThreadPoolExecutor(len(events) + 1) as pool:
        def send(event: Any) -> Any:
            with Api.for_key(base, made.key_id, made.secret) as own:
                return own.send("hot", "h", event)

        with Api.for_key(base, made.key_id, made.secret) as api:
            api.create_machine("hot", HOT.replace("__URL__", url))
            api.create_instance("hot", "h")
            holding = pool.submit(send, "hold")
            eventually(lambda: arrived == ["/slow"])    # the instance is busy settling
            box = next(iter(core._mail._boxes.values()))
            sent = []
            for n, event in enumerate(events, 1):  # queued behind it one by one, in this order
                sent.append(pool.submit(send, event))
                eventually(lambda n=n: len(box) == n)
            writes = core._runner.committer.writes
            opened.set()
            assert holding.result(60).status_code == 200
            answers = [f.result(60) for f in sent]
            assert core._runner.committer.writes - writes <= 2  # "hold" settling, then the batch
            assert [a.status_code for a in answers] == [200] * 7 + [400] + [200] * 7
            admin = api.ok("GET", "/machines/hot/i/h/admin")
            assert admin["context"]["n"] == 14
            # Each caller got the state its own event led to: in commit order, one count each.
            states = sorted((a.json() for a in answers if a.status_code == 200),
                            key=lambda state: state["ts"])
            assert [state["publicContext"]["n"] for state in states] == list(range(1, 15))
            assert len({state["ts"] for state in states}) == 14
            history = api.ok("GET", "/machines/hot/i/h/events")["transitions"]
            assert [t["event"]["type"] for t in history[-14:]] == ["inc"] * 14
