"""Every kind of step reaches subscribers, the change log and the logs (SQLite and PostgreSQL):
events that queued and ran as one batch (several events in one VM reply, one transaction), an
upgrade's transition with the event after it, and the lines of events that failed in a batch.

Each committed state must reach a subscriber once, in order, with the `ts` HTTP answered with,
and sit in the change log (which other processes' subscribers read) with the version whose
`allowRead` judges it."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from api import ids
from api.app import build_runtime, create_app
from api.bootstrap import init
from api.settings import Settings
from api.tokens import mint
from runtime.clock import SystemClock
from runtime.store import changes as change_rows
from runtime.store import machines as machine_rows
from runtime.store.models import Instance
from tests.conftest import Server
from tests.support import waiting
from tests.support.bundles import TOGGLER
from tests.support.client import Admin, Api
from tests.support.migrations import migration
from tests.support.realtime import Realtime, state_of
from tests.support.server import run_server

EPOCH = "2020-01-01T00:00:00.000Z"
FAILED = "[backstate] the step failed and changed nothing: Error: boom"

HOT = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "hot", predictableActionArguments: true, initial: "idle",
  context: { n: 0, public: { n: 0 } },
  states: {
    idle: { on: {
      inc: { actions: [assign((c) => ({ n: c.n + 1, public: { n: c.n + 1 } })),
                       (c) => console.log("inc to " + (c.n))] },
      boom: { actions: () => { console.log("about to boom"); throw new Error("boom"); } },
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


class Gate:
    """A loopback URL whose answer waits until the test opens the gate (once per request)."""

    def __init__(self) -> None:
        self.opened = threading.Semaphore(0)
        self.arrived: list[str] = []
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.arrived.append(self.path)
                gate.opened.acquire(timeout=60)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/slow"

    def close(self) -> None:
        self.opened.release(100)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    yield opened
    opened.close()


@pytest.fixture
def hot(database_url: str) -> Iterator[Server]:
    settings = Settings(database_url=database_url, secret="s" * 32, window_s=60,
                        fetch_allow_loopback=True, log_settle_s=0.05, log_flush_s=0.02)
    app = create_app(settings, runtime=build_runtime(settings, SystemClock()))
    made = init(settings, app.state.services.db)
    with run_server(app) as url:
        yield Server(url, app, settings, Admin(made.org_id, made.key_id, made.secret))


def queued_behind_a_hold(server: Server, api: Api, gate: Gate,
                         events: list[str]) -> list[dict[str, Any]]:
    """`events` queued while the instance settles a "hold" (so they run as one batch once the
    gate opens); the answers to "hold" and to each event (its state, or its error)."""
    core = server.services.core
    with ThreadPoolExecutor(len(events) + 1) as pool:
        def send(event: str) -> Any:
            with Api.for_key(server.url, server.admin.key_id, server.admin.secret) as own:
                response = own.send("hot", "h", event)
                return response.json()

        arrived = len(gate.arrived)
        holding = pool.submit(send, "hold")
        eventually(lambda: len(gate.arrived) == arrived + 1)   # the instance is busy settling
        box = next(iter(core._mail._boxes.values()))
        sent = []
        for n, event in enumerate(events, 1):   # queued behind it, one by one: in this order
            sent.append(pool.submit(send, event))
            eventually(lambda n=n: len(box) == n)
        writes = core._runner.committer.writes
        gate.opened.release()
        answers = [holding.result(60), *(f.result(60) for f in sent)]
    # "hold" settling, then the batch: at most two commits (a batch's first event failing
    # makes each event run alone, so that case may take more)
    if events[0] != "boom":
        assert core._runner.committer.writes - writes <= 2
    return answers


def logged_states(server: Server, after_seq: int) -> list[tuple[int, int, dict[str, Any]]]:
    """The change log's states of hot/h after `after_seq`: (seq, ts, view)."""
    db = server.services.db
    org = ids.decode("org", server.admin.org_id)
    assert org is not None
    with db.read() as session:
        instance_id = change_rows.resolve(session, org, "hot", "h")
        rows = change_rows.since(session, instance_id, after_seq)
    return [(row.seq, row.ts, row.parsed_view()) for row in rows]


def lines_of(api: Api, wanted: Callable[[list[str]], bool]) -> list[str]:
    """Every log line of hot/h once `wanted` says they are all there."""
    lines: list[str] = []

    def found() -> bool:
        nonlocal lines
        page = api.ok("GET", "/logs", params={"from": EPOCH, "machine": "hot"})
        lines = [line for e in page["logs"] for line in e["log"].split("\n")]
        return wanted(lines)

    eventually(found)
    return lines


@pytest.mark.parametrize("events", [
    pytest.param(["inc", "inc", "boom", "inc", "inc"], id="one-failing-inside"),
    pytest.param(["boom", "inc", "inc", "inc"], id="the-first-failing"),
])  # fmt: skip
def test_each_state_of_a_batch_reaches_the_subscriber_and_the_change_log(
    hot: Server, gate: Gate, events: list[str]
) -> None:
    with hot.client() as api:
        api.create_machine("hot", HOT.replace("__URL__", gate.url))
        api.create_instance("hot", "h")
        token = mint(hot.admin.key_id, hot.admin.secret, act={"sub": "watcher"})
        with Realtime(hot.url, token) as rt:
            rt.subscribe("hot", "h")
            first = rt.update()
            answers = queued_behind_a_hold(hot, api, gate, events)
            states = [a for a in answers if "error" not in a]
            assert len(answers) - len(states) == 1, "boom failed alone"
            # the hold's two states (holding, back to idle), then one per event that succeeded
            updates = [state_of(rt.update()) for _ in range(len(states) + 1)]
            assert [u["state"] for u in updates[:2]] == ["holding", "idle"]
            assert updates[1] == answers[0]
            incs = events.count("inc")
            assert [u["publicContext"]["n"] for u in updates[2:]] == list(range(1, incs + 1))
            by_count = {a["publicContext"]["n"]: a for a in states[1:]}
            assert updates[2:] == [by_count[n] for n in range(1, incs + 1)], "as HTTP answered"
            stamps = [first["ts"]] + [u["ts"] for u in updates]
            assert stamps == sorted(set(stamps)), "strictly increasing"
            # nothing else was sent: the next frame is the next state
            assert api.send("hot", "h", "inc").json() == state_of(rt.update())

        # other processes' subscribers read the change log: every state, in order, same `ts`
        logged = logged_states(hot, after_seq=1)
        assert [(ts, view) for _seq, ts, view in logged[:-1]] == [
            (u["ts"], {k: v for k, v in u.items() if k != "ts"}) for u in updates
        ]
        assert [seq for seq, _ts, _view in logged] == list(range(2, len(logged) + 2))

        # the logs: each inc's line, and the failed event's output and reason once each
        lines = lines_of(api, lambda got: FAILED in got and f"inc to {incs + 1}" in got)
        assert [line for line in lines if line.startswith("inc to")] == [
            f"inc to {n}" for n in range(1, incs + 2)
        ]
        assert lines.count("about to boom") == 1 and lines.count(FAILED) == 1


V2 = TOGGLER.replace('on: { on: { toggle: "off" } }',
                     'on: { entry: () => console.log("on, in v2"), on: { toggle: "off" } }')
LOUD_IDENTITY = migration('(path) => { console.log("migrating " + path.join(".")); return path; }')


def test_an_upgrade_and_the_event_after_it_reach_the_subscriber_with_the_new_version(
    server: Server,
) -> None:
    with server.client() as api:
        v1 = api.create_machine("toggler", TOGGLER)
        v2 = api.upload_version("toggler", V2, make_current=False)
        api.upload_migration("toggler", v1, v2, LOUD_IDENTITY)
        api.create_instance("toggler", "t")
        assert api.set_desired_version("toggler", "t", v2).status_code == 201
        with Realtime(server.url, mint(server.admin.key_id, server.admin.secret,
                                       act={"sub": "watcher"})) as rt:
            rt.subscribe("toggler", "t")
            first = rt.update()
            toggled = api.send("toggler", "t", "toggle").json()
            upgraded, after = state_of(rt.update()), state_of(rt.update())
            assert upgraded["state"] == "off" and first["ts"] < upgraded["ts"] < after["ts"]
            assert after == toggled and after["state"] == "on"
            assert api.send("toggler", "t", "toggle").json() == state_of(rt.update())

        db = server.services.db
        org = ids.decode("org", server.admin.org_id)
        assert org is not None
        with db.read() as session:
            machine = machine_rows.get(session, org, "toggler")
            instance = session.query(Instance).filter_by(machine_id=machine.id, slug="t").one()
            logged = change_rows.since(session, instance.id, 0)
        version = {v1: ids.decode("ver", v1), v2: ids.decode("ver", v2)}
        assert [(row.seq, row.ts) for row in logged[1:3]] == [(2, upgraded["ts"]),
                                                             (3, after["ts"])]
        # the upgrade's state is judged by the new version's allowRead, as every later one
        assert [row.version_id for row in logged] == [version[v1]] + [version[v2]] * 3

        def both_lines(page: dict[str, Any]) -> bool:
            found = [(line, e["machineVersionId"]) for e in page["logs"]
                     for line in e["log"].split("\n")]
            return ("migrating off", v2) in found and ("on, in v2", v2) in found

        eventually(lambda: both_lines(api.ok("GET", "/logs", params={"from": EPOCH})))
