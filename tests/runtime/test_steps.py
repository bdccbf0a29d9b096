"""The step API as the server uses it: create, read, send, and what each hands back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.engine import Runtime
from runtime.errors import (
    ContextError,
    InvalidRequestError,
    MachineError,
    RejectedByAuthorizerError,
)
from runtime.results import Macrostep, StepResult
from tests.runtime.conftest import Recorder, bundle, load

TOGGLE = bundle("""{
  id: "toggle", predictableActionArguments: true, initial: "off",
  context: { count: 0, owner: "nobody", public: { label: "t" } },
  states: {
    off: { on: { TOGGLE: { target: "on", actions: assign({ count: (c) => c.count + 1 }) } } },
    on: { tags: ["lit"], entry: () => console.log("switched on"),
          on: { TOGGLE: "off", FAIL: { actions: () => { throw new Error("action failed"); } } } },
  },
}""", allow_read="({ authContext, context }) => authContext.sub === context.owner",
    allow_write="""(req) => req.authContext.sub === "owner" &&
      (req.type === "initialization"
        ? req.context.count === 10 && req.state === undefined
        : typeof req.event === "object" && req.state !== undefined)""")

OWNER = {"sub": "owner"}


class Commits(list[Macrostep]):
    def __call__(self, steps: list[Macrostep]) -> None:
        self.extend(steps)


def create(rt: Runtime, source: str, context: dict[str, Any] | None = None,
           auth: dict[str, Any] | None = None) -> StepResult:
    version = load(rt, source)
    return rt.create(version, instance_name="i1", context=context, auth_context=auth or {},
                     on_commit=Commits())


def send(rt: Runtime, source: str, prev: StepResult, event: Any, *,
         auth: dict[str, Any] | None = None, commits: Commits | None = None,
         **kw: Any) -> StepResult:
    return rt.send(load(rt, source), instance_name="i1", state_json=prev.final.state_json,
                   event=event, auth_context=auth or {},
                   on_commit=commits if commits is not None else Commits(), **kw)


def test_create_merges_context_over_the_machines_and_authorizes_initialization(runtime: Runtime):
    res = create(runtime, TOGGLE, {"count": 10, "owner": "owner"}, OWNER)
    assert res.final.event == {"type": "xstate.init"}
    assert res.final.context == {"count": 10, "owner": "owner", "public": {"label": "t"}}
    assert res.final.view.public_context == {"label": "t"}
    assert res.final.view.view() == {"state": "off", "tags": [], "done": False,
                                    "publicContext": {"label": "t"}}


def test_create_rejected_by_allow_write_commits_nothing(runtime: Runtime):
    commits = Commits()
    with pytest.raises(RejectedByAuthorizerError, match="allowWrite"):
        runtime.create(load(runtime, TOGGLE), instance_name="i1", context={"count": 1},
                       auth_context=OWNER, on_commit=commits)
    assert commits == []


def test_send_normalises_string_events_and_reports_each_macrostep(runtime: Runtime):
    first = create(runtime, TOGGLE, {"count": 10, "owner": "owner"}, OWNER)
    commits = Commits()
    res = send(runtime, TOGGLE, first, "TOGGLE", auth=OWNER, commits=commits)
    assert [m.view.value for m in commits] == ["on"]
    assert res.final.event == {"type": "TOGGLE"}
    assert res.final.context["count"] == 11
    assert res.final.view.tags == ["lit"]
    assert [(log.stream, log.text) for log in res.final.logs] == [("stdout", "switched on")]
    assert json.loads(res.final.state_json)["actions"] == []


def test_restoring_a_state_never_reruns_its_actions(runtime: Runtime):
    first = create(runtime, TOGGLE, {"count": 10, "owner": "owner"}, OWNER)
    on = send(runtime, TOGGLE, first, "TOGGLE", auth=OWNER)
    ignored = send(runtime, TOGGLE, on, "UNKNOWN", auth=OWNER)
    assert ignored.logs == []          # the entry action of "on" did not run again
    assert ignored.final.view.value == "on"


def test_allow_read_sees_state_and_context(runtime: Runtime):
    first = create(runtime, TOGGLE, {"count": 10, "owner": "owner"}, OWNER)
    version = load(runtime, TOGGLE)
    runtime.read(version, instance_name="i1", state_json=first.final.state_json,
                 auth_context={"sub": "owner"})
    with pytest.raises(RejectedByAuthorizerError, match="allowRead"):
        runtime.read(version, instance_name="i1", state_json=first.final.state_json,
                     auth_context={"sub": "someone else"})


@pytest.mark.parametrize("event_type", ["xstate.after(1000)#toggle.on", "xstate.init",
                                        "done.invoke.x", "done.state.toggle.on",
                                        "error.platform.x", "error.execution"])
def test_callers_cannot_forge_internal_events(runtime: Runtime, event_type: str):
    first = create(runtime, TOGGLE, {"count": 10, "owner": "owner"}, OWNER)
    commits = Commits()
    with pytest.raises(InvalidRequestError) as err:
        send(runtime, TOGGLE, first, {"type": event_type}, auth=OWNER, commits=commits)
    assert err.value.parameter == "event"
    assert commits == []


def test_a_throwing_action_fails_the_step_and_commits_nothing(runtime: Runtime):
    first = create(runtime, TOGGLE, {"count": 10, "owner": "owner"}, OWNER)
    on = send(runtime, TOGGLE, first, "TOGGLE", auth=OWNER)
    commits = Commits()
    with pytest.raises(MachineError, match="action failed"):
        send(runtime, TOGGLE, on, "FAIL", auth=OWNER, commits=commits)
    assert commits == []


GUARDED = bundle("""{
  id: "g", predictableActionArguments: true, initial: "a", context: { items: [] },
  states: { a: { on: {
    BOOM: { target: "b", cond: () => { throw new Error("guard exploded"); } },
    MAP: { actions: assign({ items: () => new Map() }) },
    FUNC: { actions: assign({ items: () => [() => 1] }) },
    BIG: { actions: assign({ items: () => "x".repeat(500000) }) },
    KEEP: { actions: assign({ items: (c) => c.items }) },
    DEEP: { actions: assign({ items: () => [{ ok: 1, list: [1, "2", { bad: NaN }] }] }) },
    SPARSE: { actions: assign({ items: () => [1, , 3] }) },
  } }, b: {} },
}""")


@pytest.mark.parametrize(("event", "error", "message"), [
    ("BOOM", MachineError, "guard exploded"),
    ("MAP", ContextError, "Map"),
    ("FUNC", ContextError, r"context\.items\[0\] is a function"),
    ("DEEP", ContextError, r"context\.items\[0\]\.list\[2\]\.bad is NaN"),
    ("BIG", ContextError, "byte limit"),
])
def test_guards_and_contexts_that_cannot_be_persisted_change_nothing(
        runtime: Runtime, event: str, error: type[Exception], message: str):
    first = create(runtime, GUARDED)
    commits = Commits()
    with pytest.raises(error, match=message):
        send(runtime, GUARDED, first, event, commits=commits)
    assert commits == []


def test_a_bundle_that_takes_performance_away_still_loads_and_runs(runtime: Runtime):
    # The harness's phase recorder (bench/guest_profile.py) reads performance.now at load.
    source = bundle('{ id: "p", initial: "a", states: { a: { on: { GO: "b" } }, b: {} } }',
                    prelude="delete globalThis.performance;")
    assert send(runtime, source, create(runtime, source), "GO").final.view.value == "b"


def test_an_array_with_holes_is_persisted_as_json_writes_it(runtime: Runtime):
    commits = Commits()
    send(runtime, GUARDED, create(runtime, GUARDED), "SPARSE", commits=commits)
    assert commits[0].context == {"items": [1, None, 3]}


def test_a_state_over_the_context_limit_with_a_small_context_is_saved(runtime: Runtime):
    # The state's JSON holds the event twice (event, _event): it is over the limit, yet the
    # context alone, which is what the limit is about, is small.
    commits = Commits()
    send(runtime, GUARDED, create(runtime, GUARDED), {"type": "KEEP", "pad": "y" * 300_000},
         commits=commits)
    assert len(commits) == 1 and len(commits[0].state_json) > runtime.limits.context_bytes
    assert commits[0].context == {"items": []}


TIMERS = bundle("""{
  id: "timers", predictableActionArguments: true, initial: "idle",
  states: {
    idle: { on: { ARM: {
      target: "waiting",
      actions: send({ type: "PING", n: 1 }, { delay: 5000, id: "ping" }),
    } } },
    waiting: {
      after: { 1000: "expired" },
      on: { DISARM: { target: "idle", actions: cancel("ping") } },
    },
    expired: {},
  },
}""")


def test_delayed_sends_and_after_become_timers_and_leaving_cancels_them(runtime: Runtime):
    first = create(runtime, TIMERS)
    armed = send(runtime, TIMERS, first, "ARM")
    timers = {t.send_id: t for t in armed.final.timers}
    assert set(timers) == {"ping", "xstate.after(1000)#timers.waiting"}
    assert timers["ping"].event == {"type": "PING", "n": 1}
    assert timers["ping"].delay_ms == 5000
    assert timers["ping"].due_at_ms - timers["xstate.after(1000)#timers.waiting"].due_at_ms == 4000
    disarmed = send(runtime, TIMERS, armed, "DISARM")
    assert set(disarmed.final.cancels) == {"ping", "xstate.after(1000)#timers.waiting"}


def test_a_timer_event_is_delivered_as_trusted(runtime: Runtime):
    armed = send(runtime, TIMERS, create(runtime, TIMERS), "ARM")
    timer = next(t for t in armed.final.timers if t.send_id.startswith("xstate.after"))
    fired = send(runtime, TIMERS, armed, timer.event, trusted=True)
    assert fired.final.view.value == "expired"


def fetching(url: str) -> str:
    machine = """{
  id: "f", predictableActionArguments: true, initial: "idle", context: { n: 0 },
  states: {
    idle: { on: { GO: "loading" } },
    loading: { invoke: {
      src: async () => {
        const r = await fetch(__URL__, { method: "POST", body: "hi" });
        if (!r.ok) throw new Error("HTTP " + r.status);
        return (await r.json()).n + 1;
      },
      onDone: { target: "done", actions: assign({ n: (c, e) => e.data }) },
      onError: { target: "failed", actions: assign({ n: () => -1 }) },
    } },
    done: {}, failed: {},
  },
}"""
    return bundle(machine.replace("__URL__", json.dumps(url + "/n")))


def test_fetches_run_only_after_the_macrostep_that_issued_them_is_committed(
        runtime: Runtime, http_server: Recorder):
    source = fetching(http_server.url)
    seen_by_server_at_commit: list[int] = []

    def commit(steps: list[Macrostep]) -> None:
        seen_by_server_at_commit.extend(len(http_server.requests) for _ in steps)

    res = runtime.send(load(runtime, source), instance_name="i1",
                       state_json=create(runtime, source).final.state_json, event="GO",
                       auth_context={}, on_commit=commit)
    assert [m.view.value for m in res.macrosteps] == ["loading", "done"]
    assert len(res.macrosteps[0].running) == 1 and res.macrosteps[1].running == []
    assert res.final.event["type"].startswith("done.invoke.")
    assert res.final.context == {"n": 42}
    assert seen_by_server_at_commit == [0, 1]
    assert http_server.requests[0]["method"] == "POST" and http_server.requests[0]["body"] == "hi"
    assert res.cut_off == []


def test_only_the_steps_final_commit_is_marked_last(
        tight_runtime: Runtime, http_server: Recorder):
    """`last` lets the server release its lease in the final commit: it must never be set on
    a macrostep after which the step still commits (a service running, promise jobs)."""
    toggled = send(tight_runtime, TOGGLE, create(tight_runtime, TOGGLE, {"count": 10},
                                                 auth=OWNER), "TOGGLE", auth=OWNER)
    assert [m.last for m in toggled.macrosteps] == [True]
    source = fetching(http_server.url)
    fetched = send(tight_runtime, source, create(tight_runtime, source), "GO")
    assert [m.last for m in fetched.macrosteps] == [False, True]
    http_server.delay_s = 3.0
    cut = send(tight_runtime, source, create(tight_runtime, source), "GO")
    assert cut.cut_off and [m.last for m in cut.macrosteps] == [False]


def test_a_failing_commit_releases_no_effect(runtime: Runtime, http_server: Recorder):
    source = fetching(http_server.url)

    def refuse(steps: list[Macrostep]) -> None:
        raise RuntimeError("database unavailable")

    with pytest.raises(RuntimeError, match="database unavailable"):
        runtime.send(load(runtime, source), instance_name="i1",
                     state_json=create(runtime, source).final.state_json, event="GO",
                     auth_context={}, on_commit=refuse)
    assert http_server.requests == []


def test_a_rejected_promise_delivers_error_platform(runtime: Runtime, http_server: Recorder):
    http_server.status = 500
    source = fetching(http_server.url)
    res = send(runtime, source, create(runtime, source), "GO")
    assert res.final.view.value == "failed"
    assert res.final.event["type"].startswith("error.platform.")


def test_services_cut_off_by_the_window_get_their_error_before_the_next_event(
        tight_runtime: Runtime, http_server: Recorder):
    http_server.delay_s = 3.0
    source = fetching(http_server.url)
    res = send(tight_runtime, source, create(tight_runtime, source), "GO")
    assert res.final.view.value == "loading"
    assert len(res.cut_off) == 1 and res.cut_off[0].startswith("f.loading")
    after = send(tight_runtime, source, res, "NOTHING", cut_off=res.cut_off)
    assert [m.event["type"] for m in after.macrosteps] == [f"error.platform.{res.cut_off[0]}",
                                                           "NOTHING"]
    assert after.final.view.value == "failed"


SELF_SEND = bundle("""{
  id: "s", predictableActionArguments: true, initial: "a", context: { log: [] },
  states: {
    a: { on: { GO: {
      target: "b",
      actions: [assign({ log: (c) => [...c.log, "a->b"] }), send("NEXT")],
    } } },
    b: {
      entry: raise("RAISED"),
      on: {
        RAISED: { actions: assign({ log: (c) => [...c.log, "raised"] }) },
        NEXT: "c",
      },
    },
    c: { type: "final" },
  },
}""")


def test_send_to_self_is_its_own_macrostep_and_raise_is_not(runtime: Runtime):
    res = send(runtime, SELF_SEND, create(runtime, SELF_SEND), "GO")
    assert [(m.event["type"], m.view.value) for m in res.macrosteps] == [("GO", "b"),
                                                                         ("NEXT", "c")]
    assert res.macrosteps[0].context["log"] == ["a->b", "raised"]
    assert res.final.view.done is True


LEAKY = bundle("""{
  id: "leak", predictableActionArguments: true, initial: "a", context: { seen: null, r: 0 },
  states: { a: { on: { PROBE: { actions: assign({
    seen: () => globalThis.__secret ?? null,
    r: () => { globalThis.__secret = "tenant data"; return Math.random(); } }) } } } },
}""")


def test_strict_vms_run_each_event_in_a_pristine_vm_with_fresh_randomness(
        strict_runtime: Runtime):
    first = create(strict_runtime, LEAKY)
    one = send(strict_runtime, LEAKY, first, "PROBE")
    two = send(strict_runtime, LEAKY, first, "PROBE")
    assert one.final.context["seen"] is None and two.final.context["seen"] is None
    assert one.final.context["r"] != two.final.context["r"]


def test_warm_vms_are_reused_across_events_and_reseed_randomness(runtime: Runtime):
    # A warm VM serves the version's instances one after another, as an isolate serves
    # requests: module globals persist between events (so tenants of one machine version share
    # them); randomness and time never do.
    first = create(runtime, LEAKY)
    one = send(runtime, LEAKY, first, "PROBE")
    two = send(runtime, LEAKY, first, "PROBE")
    assert two.final.context["seen"] == "tenant data"
    assert one.final.context["r"] != two.final.context["r"]


def test_statebacked_machine_runtime_hooks_are_installed(runtime: Runtime):
    probe = bundle("""{
      id: "hooks", predictableActionArguments: true, initial: "a",
      context: { ok: false, ref: null },
      states: { a: { entry: assign({
        ok: () => globalThis.__statebacked_rt === globalThis.__statebaked_rt &&
                  typeof globalThis.__statebacked_rt.spawn === "function",
        ref: () => globalThis.__statebacked_rt.spawn(
          { machineName: "child", machineInstanceName: "c1" },
          { name: "kid", context: { n: 1 } }) }) } },
    }""")
    first = create(runtime, probe).macrosteps[0]
    assert first.context["ok"] is True
    assert first.context["ref"] == {"type": "statebacked.instance", "id": "kid",
                                    "machineName": "child", "machineInstanceName": "c1"}
    (entry,) = first.timers  # the child to create, in the macrostep's outbox
    assert entry.delivery == {"kind": "create", "machine": "child", "instance": "c1",
                              "version": None, "context": {"n": 1}, "invokeId": None}
