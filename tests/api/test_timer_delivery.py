"""Durable timers delivered by a real server's scheduler, on a fake clock: no test waits for a
timer's delay, only (briefly) for the scheduler to notice the clock moved."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api.app import build_runtime, create_app
from api.bootstrap import init
from api.settings import Settings
from runtime.clock import FakeClock
from runtime.engine import Runtime
from runtime.store.models import Timer
from tests.conftest import Server
from tests.support import waiting
from tests.support.bundles import TIMER
from tests.support.client import Admin, Api
from tests.support.server import run_server

FLAKY = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "flaky", predictableActionArguments: true, initial: "idle", context: { pings: 0 },
  states: {
    idle: { on: { start: "waiting" } },
    waiting: {
      after: { 60000: { target: "rang", actions: () => { throw new Error("bell is broken"); } } },
      on: { ping: { actions: assign({ pings: (c) => c.pings + 1 }) } },
    },
    rang: {},
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

FINISHING = """
import { createMachine, send } from "npm:xstate";
export default createMachine({
  id: "finishing", predictableActionArguments: true, initial: "idle",
  states: {
    idle: { on: { start: { target: "busy", actions: send("nag", { delay: 60000, id: "nag" }) } } },
    busy: { on: { finish: "finished", nag: "nagged" } },
    nagged: {},
    finished: { type: "final" },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


@pytest.fixture(scope="module")
def timer_runtime() -> Runtime:
    runtime = build_runtime(Settings(window_s=5.0), FakeClock())
    assert isinstance(runtime, Runtime)
    return runtime


@pytest.fixture
def clock(timer_runtime: Runtime) -> FakeClock:
    fake = FakeClock(1_800_000_000_000, autojump=False)
    timer_runtime.clock = fake          # due times are computed on the test's clock
    return fake


@pytest.fixture
def timer_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timer_poll_s": 0.02})


@pytest.fixture
def start_server(timer_settings: Settings, timer_runtime: Runtime,
                 clock: FakeClock) -> Iterator[Callable[[], Any]]:
    """Starts servers on one database (a second call after the first one stopped is a
    restart); yields a factory returning a context manager of `Server`."""
    from contextlib import contextmanager

    @contextmanager
    def start() -> Iterator[Server]:
        app = create_app(timer_settings, runtime=timer_runtime, clock=clock)
        made = init(timer_settings, app.state.services.db)
        with run_server(app) as url:
            yield Server(url, app, timer_settings, Admin(made.org_id, made.key_id, made.secret))

    yield start


@pytest.fixture
def timed(start_server: Callable[[], Any]) -> Iterator[Server]:
    with start_server() as server:
        yield server


# Polled until it holds: see tests/support/waiting.py.
eventually = functools.partial(waiting.eventually, timeout=15.0)


def settle(server: Server) -> None:
    """Wait until the scheduler has looked for due timers twice since now (and delivered what
    it found): a clock change made before this call has been acted on."""
    scheduler = server.services.core.scheduler
    looks = scheduler.looks
    eventually(lambda: scheduler.looks >= looks + 2 and not scheduler._tasks)


def state(api: Api, machine: str, slug: str = "i1") -> Any:
    return api.ok("GET", f"/machines/{machine}/i/{slug}/admin")


def timers(server: Server) -> list[Timer]:
    with server.services.db.transaction() as session:
        return list(session.scalars(select(Timer)))


def test_after_fires_when_due_and_not_before(timed: Server, clock: FakeClock):
    with timed.client() as api:
        api.create_machine("timer", TIMER)
        api.create_instance("timer", "i1")
        api.ok("POST", "/machines/timer/i/i1/events", {"event": "start"})
        clock.advance(59.9)
        settle(timed)
        assert state(api, "timer")["state"] == "waiting"
        clock.advance(0.1)
        eventually(lambda: state(api, "timer")["state"] == "rang")
        history = api.ok("GET", "/machines/timer/i/i1/events")["transitions"]
        events = [t["event"]["type"] for t in history]
        assert events == ["xstate.init", "start", "xstate.after(60000)#timer.waiting"]
        assert timers(timed) == []


def test_leaving_the_state_cancels_the_timer(timed: Server, clock: FakeClock):
    with timed.client() as api:
        api.create_machine("timer", TIMER)
        api.create_instance("timer", "i1")
        api.ok("POST", "/machines/timer/i/i1/events", {"event": "start"})
        assert len(timers(timed)) == 1
        api.ok("POST", "/machines/timer/i/i1/events", {"event": "stop"})
        assert timers(timed) == []
        clock.advance(120)
        settle(timed)
        assert state(api, "timer")["state"] == "idle"


def test_a_timer_armed_in_an_earlier_transition_still_fires(timed: Server, clock: FakeClock):
    with timed.client() as api:
        api.create_machine("flaky", FLAKY.replace("throw new Error(\"bell is broken\");", ""))
        api.create_instance("flaky", "i1")
        api.ok("POST", "/machines/flaky/i/i1/events", {"event": "start"})
        clock.advance(30)
        api.ok("POST", "/machines/flaky/i/i1/events", {"event": "ping"})
        clock.advance(30)
        eventually(lambda: state(api, "flaky")["state"] == "rang")
        assert state(api, "flaky")["context"]["pings"] == 1


def test_a_restarted_server_fires_after_the_remaining_time_not_the_full_delay(
        start_server: Callable[[], Any], clock: FakeClock):
    with start_server() as first, first.client() as api:
        api.create_machine("timer", TIMER)
        api.create_instance("timer", "i1")
        api.ok("POST", "/machines/timer/i/i1/events", {"event": "start"})
    clock.advance(45)                           # the server was down for 45 s
    with start_server() as second, second.client() as api:
        clock.advance(14.9)
        settle(second)
        assert state(api, "timer")["state"] == "waiting"
        clock.advance(0.1)
        eventually(lambda: state(api, "timer")["state"] == "rang")


def test_a_paused_instance_gets_its_timer_retried_then_delivered_once_resumed(
        timed: Server, clock: FakeClock):
    with timed.client() as api:
        api.create_machine("timer", TIMER)
        api.create_instance("timer", "i1")
        api.ok("POST", "/machines/timer/i/i1/events", {"event": "start"})
        api.request("PUT", "/machines/timer/i/i1/status", {"status": "paused"})
        clock.advance(60)
        eventually(lambda: [t.attempts for t in timers(timed)] == [1],
                   describe=lambda: [(t.attempts, t.due_at_ms, t.claimed_by)
                                     for t in timers(timed)])
        assert state(api, "timer")["state"] == "waiting"
        api.request("PUT", "/machines/timer/i/i1/status", {"status": "running"})
        clock.advance(30)
        eventually(lambda: state(api, "timer")["state"] == "rang",
                   describe=lambda: (state(api, "timer")["state"],
                                     [(t.attempts, t.due_at_ms, t.claimed_by)
                                      for t in timers(timed)],
                                     clock.now_ms()))


def test_a_failing_delivery_is_retried_five_times_then_dropped(timed: Server, clock: FakeClock):
    with timed.client() as api:
        api.create_machine("flaky", FLAKY)
        api.create_instance("flaky", "i1")
        api.ok("POST", "/machines/flaky/i/i1/events", {"event": "start"})
        clock.advance(60)
        for attempts in (1, 2, 3, 4):
            eventually(lambda a=attempts: [t.attempts for t in timers(timed)] == [a])
            clock.advance(30)
        eventually(lambda: timers(timed) == [])
        assert timed.services.core.scheduler.dropped == 1
        assert state(api, "flaky")["state"] == "waiting"   # no delivery changed anything


def test_reaching_the_final_state_drops_pending_timers(timed: Server, clock: FakeClock):
    with timed.client() as api:
        api.create_machine("finishing", FINISHING)
        api.create_instance("finishing", "i1")
        api.ok("POST", "/machines/finishing/i/i1/events", {"event": "start"})
        assert [t.send_id for t in timers(timed)] == ["nag"]
        done = api.ok("POST", "/machines/finishing/i/i1/events", {"event": "finish"})
        assert done["done"] is True
        assert timers(timed) == []


def test_every_committed_state_reaches_the_feed_in_order(timed: Server, clock: FakeClock):
    """Client events and timer deliveries alike: each committed state once, in commit order,
    with the `ts` HTTP answers with; a listener that is gone hears nothing more."""
    seen: list[Any] = []
    unsubscribe = timed.services.core.feed.subscribe(seen.append)
    with timed.client() as api:
        api.create_machine("timer", TIMER)
        answers = [api.create_instance("timer", "i1")]
        answers.append(api.send("timer", "i1", "start").json())
        clock.advance(60)
        eventually(lambda: len(seen) == 3, describe=lambda: seen)
        answers.append(api.ok("GET", "/machines/timer/i/i1"))
        assert [c.state.wire() for c in seen] == answers
        assert [c.seq for c in seen] == [1, 2, 3]
        assert [c.state.view["state"] for c in seen] == ["idle", "waiting", "rang"]
        assert len({c.instance_id for c in seen}) == 1
        unsubscribe()
        api.create_instance("timer", "i2")
        assert len(seen) == 3


# Three timers due at once: `rearm` snoozes `late`, `cancel` cancels `gone`, `boom` throws.
SEVERAL = """
import { createMachine, assign, send, cancel } from "npm:xstate";
const tick = (name) => ({ actions: assign({ got: (c) => [...c.got, name] }) });
export default createMachine({
  id: "several", predictableActionArguments: true, initial: "on", context: { got: [] },
  states: { on: { on: {
    arm: { actions: [
      send("t1", { delay: 1000, id: "t1" }), send("t2", { delay: 1000, id: "t2" }),
      send("t3", { delay: 1000, id: "t3" }),
    ] },
    armMixed: { actions: [
      send("cancel", { delay: 1000, id: "cancel" }), send("gone", { delay: 1000, id: "gone" }),
      send("rearm", { delay: 1000, id: "rearm" }), send("late", { delay: 1000, id: "late" }),
      send("boom", { delay: 1000, id: "boom" }), send("t1", { delay: 1000, id: "t1" }),
    ] },
    t1: tick("t1"), t2: tick("t2"), t3: tick("t3"), gone: tick("gone"), late: tick("late"),
    cancel: { actions: [cancel("gone"), assign({ got: (c) => [...c.got, "cancel"] })] },
    rearm: { actions: [send("late", { delay: 5000, id: "late" }),
                       assign({ got: (c) => [...c.got, "rearm"] })] },
    boom: { actions: () => { throw new Error("boom"); } },
  } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def test_timers_due_together_run_as_one_step_one_transition_each(timed: Server,
                                                                  clock: FakeClock):
    committer = timed.services.core._runner.committer
    with timed.client() as api:
        api.create_machine("several", SEVERAL)
        api.create_instance("several", "i1")
        api.ok("POST", "/machines/several/i/i1/events", {"event": "arm"})
        commits = committer.batches
        clock.advance(1)
        eventually(lambda: timers(timed) == [], describe=lambda: timers(timed))
        settle(timed)
        assert committer.batches == commits + 1   # one step, one commit for the three
        assert state(api, "several")["context"]["got"] == ["t1", "t2", "t3"]
        history = api.ok("GET", "/machines/several/i/i1/events")["transitions"]
        assert [t["event"]["type"] for t in history][-3:] == ["t1", "t2", "t3"]


def test_a_timer_of_a_batch_cancelled_or_snoozed_by_an_earlier_one_is_not_delivered(
        timed: Server, clock: FakeClock):
    """Delivered alone, `gone` would find its row deleted by `cancel`'s commit and `late` its
    row replaced by `rearm`'s: in a batch, as alone, neither runs; `boom` fails alone and is
    retried, and `t1` after it is delivered."""
    with timed.client() as api:
        api.create_machine("several", SEVERAL)
        api.create_instance("several", "i1")
        api.ok("POST", "/machines/several/i/i1/events", {"event": "armMixed"})
        clock.advance(1)
        eventually(lambda: sorted((t.send_id, t.attempts) for t in timers(timed))
                   == [("boom", 1), ("late", 0)], describe=lambda: timers(timed))
        settle(timed)
        assert state(api, "several")["context"]["got"] == ["cancel", "rearm", "t1"]
        clock.advance(5)
        eventually(lambda: [t.send_id for t in timers(timed)] == ["boom"])
        settle(timed)
        assert state(api, "several")["context"]["got"] == ["cancel", "rearm", "t1", "late"]
