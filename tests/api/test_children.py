"""Persistent children and events between instances, on a real server (SQLite and PostgreSQL)
with a fake clock: children are created and events delivered after the sender's commit, through
the receiver's own path; delays and retries move only when the test moves the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from tests.support.children import BOUNCER, CHILD, INVOKER, PARENT, STRANGER, WORKER
from tests.support.client import Admin, Api, assert_error
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def child_runtime() -> Runtime:
    runtime = build_runtime(Settings(window_s=5.0), FakeClock())
    assert isinstance(runtime, Runtime)
    return runtime


@pytest.fixture
def clock(child_runtime: Runtime) -> FakeClock:
    fake = FakeClock(1_800_000_000_000, autojump=False)
    child_runtime.clock = fake
    return fake


@pytest.fixture
def start_server(settings: Settings, child_runtime: Runtime,
                 clock: FakeClock) -> Callable[[], Any]:
    quick = settings.model_copy(update={"timer_poll_s": 0.02})

    @contextmanager
    def start() -> Iterator[Server]:
        from tests.support.server import run_server

        app = create_app(quick, runtime=child_runtime, clock=clock)
        made = init(quick, app.state.services.db)
        with run_server(app) as url:
            yield Server(url, app, quick, Admin(made.org_id, made.key_id, made.secret))

    return start


@pytest.fixture
def served(start_server: Callable[[], Any]) -> Iterator[Server]:
    with start_server() as server:
        yield server


@pytest.fixture
def api(served: Server) -> Iterator[Api]:
    with served.client() as client:
        yield client




def admin(api: Api, machine: str, slug: str) -> Any:
    return api.ok("GET", f"/machines/{machine}/i/{slug}/admin")


def exists(api: Api, machine: str, slug: str) -> bool:
    return api.request("GET", f"/machines/{machine}/i/{slug}/admin").status_code == 200


def events(api: Api, machine: str, slug: str) -> list[str]:
    history = api.ok("GET", f"/machines/{machine}/i/{slug}/events")["transitions"]
    return [t["event"]["type"] for t in history]


def outbox(server: Server) -> list[Timer]:
    with server.services.db.transaction() as session:
        return list(session.scalars(select(Timer).where(Timer.delivery.is_not(None))))


def settled(server: Server) -> Callable[[], bool]:
    """Nothing left in any outbox and no delivery in flight."""
    scheduler = server.services.core.scheduler
    return lambda: not outbox(server) and not scheduler._tasks


def as_built(source: str, build: str) -> str:
    """The bundle as newer smply builds it (xstate imported, as written) or as smply 0.1.18 does
    (xstate and @statebacked/machine inlined)."""
    if build == "imported":
        return source
    from api.services.builder import Builder

    return Builder().build(source.replace('from "npm:xstate"', 'from "xstate"'), "m.js").code


def family(api: Api, build: str = "imported") -> None:
    api.create_machine("parent", as_built(PARENT, build))
    api.create_machine("child", as_built(CHILD, build))
    api.create_instance("parent", "p1")


@pytest.mark.parametrize("build", ["imported", "inlined"])
def test_a_parent_spawns_a_child_and_they_exchange_events_both_ways(api: Api, served: Server,
                                                                    build: str):
    family(api, build)
    started = api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start",
                                                                        "name": "c1"}})
    assert started["state"] == "running"
    eventually(lambda: exists(api, "child", "c1"))
    child = admin(api, "child", "c1")
    assert child["context"] == {"greeting": "hello", "pings": 0}
    parent = admin(api, "parent", "p1")
    assert parent["context"]["child"] == {"type": "statebacked.instance", "id": "kid",
                                          "machineName": "child", "machineInstanceName": "c1"}

    api.ok("POST", "/machines/parent/i/p1/events", {"event": "ping"})
    api.ok("POST", "/machines/parent/i/p1/events", {"event": "pingByName"})
    eventually(lambda: admin(api, "parent", "p1")["context"]["pongs"] == 2,
               describe=lambda: (admin(api, "parent", "p1"), admin(api, "child", "c1")))
    assert admin(api, "child", "c1")["context"]["pings"] == 2

    api.ok("POST", "/machines/child/i/c1/events", {"event": "finish"})
    eventually(lambda: admin(api, "parent", "p1")["state"] == "finished")
    eventually(settled(served))
    assert events(api, "parent", "p1") == ["xstate.init", "start", "ping", "pingByName",
                                           "pong", "pong", "childDone"]
    assert events(api, "child", "c1") == ["xstate.init", "ping", "ping", "finish"]


def test_the_receivers_allow_write_sees_the_sender(api: Api, served: Server):
    family(api)
    api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start", "name": "c1"}})
    eventually(lambda: exists(api, "child", "c1"))
    # A client is no instance: the child's allowWrite refuses its ping, and a forged pong.
    assert_error(api.send("child", "c1", "ping"), 403)
    assert_error(api.send("parent", "p1", "pong"), 403)
    assert admin(api, "parent", "p1")["context"]["pongs"] == 0


def test_a_refused_message_is_retried_then_dropped(api: Api, served: Server, clock: FakeClock):
    family(api)
    api.create_machine("stranger", STRANGER)
    api.create_instance("stranger", "s1")
    api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start", "name": "c1"}})
    eventually(lambda: exists(api, "child", "c1"))
    api.ok("POST", "/machines/stranger/i/s1/events", {"event": {"type": "poke", "name": "c1"}})
    eventually(lambda: [row.attempts for row in outbox(served)] == [1],
               describe=lambda: [(r.attempts, r.delivery) for r in outbox(served)])
    for attempt in range(2, 5):
        clock.advance(30)
        eventually(lambda: [row.attempts for row in outbox(served)] == [attempt],  # noqa: B023
                   describe=lambda: [(r.attempts, r.due_at_ms) for r in outbox(served)])
    clock.advance(30)
    eventually(settled(served))                   # the fifth attempt failed: dropped
    assert admin(api, "child", "c1")["context"]["pings"] == 0
    assert events(api, "child", "c1") == ["xstate.init"]


def test_a_delayed_message_waits_for_its_time_and_can_be_cancelled(
        api: Api, served: Server, clock: FakeClock):
    family(api)
    api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start", "name": "c1"}})
    eventually(lambda: exists(api, "child", "c1"))
    api.ok("POST", "/machines/parent/i/p1/events", {"event": "later"})
    clock.advance(59.9)
    api.ok("POST", "/machines/parent/i/p1/events", {"event": "ping"})   # an immediate one
    eventually(lambda: admin(api, "parent", "p1")["context"]["pongs"] == 1)
    assert [row.send_id for row in outbox(served)] == ["later"]
    clock.advance(0.1)
    eventually(lambda: admin(api, "parent", "p1")["context"]["pongs"] == 2)

    api.ok("POST", "/machines/parent/i/p1/events", {"event": "later"})
    api.ok("POST", "/machines/parent/i/p1/events", {"event": "cancelLater"})
    assert outbox(served) == []
    clock.advance(120)
    api.ok("POST", "/machines/parent/i/p1/events", {"event": "ping"})
    eventually(lambda: admin(api, "parent", "p1")["context"]["pongs"] == 3)
    eventually(settled(served))
    assert admin(api, "child", "c1")["context"]["pings"] == 3


def test_two_instances_messaging_each_other_make_progress(api: Api, served: Server):
    api.create_machine("bouncer", BOUNCER)
    api.create_instance("bouncer", "a", context={"peer": "b", "limit": 40})
    api.create_instance("bouncer", "b", context={"peer": "a", "limit": 40})
    # Two balls in flight at once, one served from each side: a cycle both ways.
    api.ok("POST", "/machines/bouncer/i/a/events", {"event": {"type": "ball", "n": 1}})
    api.ok("POST", "/machines/bouncer/i/b/events", {"event": {"type": "ball", "n": 1}})

    def hits() -> int:
        return int(admin(api, "bouncer", "a")["context"]["hits"]
                   + admin(api, "bouncer", "b")["context"]["hits"])

    eventually(lambda: hits() == 80, describe=hits)
    eventually(settled(served))
    assert hits() == 80


def test_bad_children_fail_the_parents_transition_or_are_dropped(api: Api, served: Server):
    family(api)
    bad = api.send("parent", "p1", {"type": "start", "name": "not a slug"})
    assert_error(bad, 400)
    assert "machineInstanceName" in bad.json()["error"]
    assert admin(api, "parent", "p1")["state"] == "idle"
    api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start", "name": "c1"}})
    eventually(lambda: exists(api, "child", "c1"))
    api.create_instance("parent", "p2")     # a second parent asks for the same child: dropped
    api.ok("POST", "/machines/parent/i/p2/events", {"event": {"type": "start", "name": "c1"}})
    eventually(settled(served))
    assert events(api, "child", "c1") == ["xstate.init"]


@pytest.mark.parametrize("build", ["imported", "inlined"])
def test_an_invoked_persistent_child_reports_done_to_its_parent(api: Api, served: Server,
                                                                build: str):
    api.create_machine("invoker", as_built(INVOKER, build))
    api.create_machine("worker", as_built(WORKER, build))
    api.create_instance("invoker", "p1")
    api.ok("POST", "/machines/invoker/i/p1/events", {"event": {"type": "go", "task": "t1"}})
    eventually(lambda: len(api.ok("GET", "/machines/worker/i")["instances"]) == 1)
    (worker,) = api.ok("GET", "/machines/worker/i")["instances"]
    assert admin(api, "worker", worker["slug"])["context"] == {"task": "t1"}
    api.ok("POST", "/machines/invoker/i/p1/events", {"event": "nudge"})
    eventually(lambda: admin(api, "invoker", "p1")["state"] == "finished",
               describe=lambda: admin(api, "invoker", "p1"))
    assert admin(api, "invoker", "p1")["context"]["result"] == {"finished": "t1"}
    assert events(api, "invoker", "p1")[-1] == "done.invoke.worker"


def test_ephemeral_spawn_runs_in_a_bundle_with_xstate_inlined(api: Api):
    from api.services.builder import Builder
    from tests.runtime.test_ephemeral_spawn import CALLBACK, SPAWNER

    api.create_machine("spawner", Builder().build(SPAWNER, "machine.js").code)  # as smply 0.1.18
    api.create_instance("spawner", "s1")
    done = api.ok("POST", "/machines/spawner/i/s1/events", {"event": "go"})
    assert done["state"] == "done" and done["done"] is True
    assert admin(api, "spawner", "s1")["context"]["log"] == ["spawned", "ready", "pong 1",
                                                             "pong 2"]
    api.create_machine("callback", Builder().build(CALLBACK, "machine.js").code)
    api.create_instance("callback", "c1")
    refused = api.send("callback", "c1", "go")
    assert_error(refused, 400, "not-supported")
    assert "not supported" in refused.json()["error"]


def test_a_child_of_a_machine_that_does_not_exist_is_dropped_with_a_log_line(
        api: Api, served: Server, caplog: pytest.LogCaptureFixture):
    api.create_machine("parent", PARENT.replace('machineName: "child"', 'machineName: "ghost"'))
    api.create_instance("parent", "p1")
    with caplog.at_level("ERROR", logger="backstate.outbox"):
        api.ok("POST", "/machines/parent/i/p1/events", {"event": {"type": "start", "name": "g1"}})
        eventually(settled(served))
    assert any("creating child ghost/g1 from parent/p1 dropped" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    # A message to it has no instance to go to: dropped too, with its own line.
    with caplog.at_level("ERROR", logger="backstate.outbox"):
        api.ok("POST", "/machines/parent/i/p1/events", {"event": "ping"})
        eventually(settled(served))
    assert any("event for ghost/g1 from parent/p1 dropped" in r.getMessage()
               for r in caplog.records)
