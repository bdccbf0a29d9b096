"""Hostile and broken bundles: each ends in a clear error, and the host keeps working."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from runtime.engine import Runtime, RuntimeLimits
from runtime.errors import (
    BundleError,
    MachineError,
    MemoryLimitError,
    RejectedByAuthorizerError,
    SandboxError,
    StackOverflowError,
    TimeLimitError,
)
from tests.runtime.conftest import bundle, load

HEALTHY = bundle("""{ id: "ok", predictableActionArguments: true, initial: "a",
  states: { a: { on: { GO: "b" } }, b: {} } }""")


def on_go(action: str = "() => {}", cond: str = "() => true") -> str:
    machine = """{ id: "h", predictableActionArguments: true, initial: "a", context: { x: 0 },
      states: {
        a: { on: { GO: { target: "b", cond: __COND__, actions: __ACTION__ } } },
        b: {} } }"""
    return bundle(machine.replace("__COND__", cond).replace("__ACTION__", action))


def step(rt: Runtime, source: str, event: str = "GO", auth: dict | None = None):
    version = load(rt, source)
    first = rt.create(version, instance_name="i", context=None, auth_context={},
                      on_commit=lambda m: None)
    commits: list = []
    try:
        return rt.send(version, instance_name="i", state_json=first.final.state_json, event=event,
                       auth_context=auth or {}, on_commit=commits.extend)
    except Exception:
        assert commits == [], "a failed step must commit nothing"
        raise


@pytest.fixture(autouse=True)
def host_keeps_working(tight_runtime: Runtime):
    yield
    res = step(tight_runtime, HEALTHY)
    assert res.final.view.value == "b"


@pytest.mark.parametrize(("name", "source", "error", "message"), [
    ("loop in an action", on_go(action="() => { while (true) {} }"), TimeLimitError, "time limit"),
    ("loop that swallows exceptions",
     on_go(action="() => { for (;;) { try { while (true) {} } catch (e) {} } }"),
     TimeLimitError, "time limit"),
    ("loop in a guard", on_go(cond="() => { while (true) {} }"), TimeLimitError, "time limit"),
    ("ReDoS", on_go(action="() => /(a+)+$/.test('a'.repeat(40) + 'b')"),
     TimeLimitError, "time limit"),
    ("buffer memory bomb",
     on_go(action="() => { const a = []; for (;;) a.push(new ArrayBuffer(1 << 20)); }"),
     MemoryLimitError, "out of memory"),
    # Small objects are GC-bound: whichever limit comes first stops them, both cleanly.
    ("object memory bomb",
     on_go(action="() => { const a = []; for (let i = 0; ; i++) a.push({ i, s: 'a' + i }); }"),
     SandboxError, "out of memory|time limit"),
    ("array memory bomb",
     on_go(action="() => { const a = []; for (;;) a.push(new Array(1 << 16).fill(7)); }"),
     SandboxError, "out of memory|time limit"),
    ("string memory bomb", on_go(action="() => { let s = 'x'; for (;;) s += s; }"),
     MachineError, "out of memory|string too long"),
    ("deep recursion", on_go(action="() => { const f = (n) => f(n + 1) + 1; f(0); }"),
     StackOverflowError, "stack"),
    ("deeply nested JSON.parse", on_go(action="() => JSON.parse('['.repeat(1e6))"),
     StackOverflowError, "stack"),
    ("touching process", on_go(action="() => process.exit(1)"), MachineError,
     "process is not defined"),
    ("touching require", on_go(action="() => require('fs')"), MachineError,
     "require is not defined"),
    ("touching Deno", on_go(action="() => Deno.readFileSync('/etc/passwd')"), MachineError,
     "Deno is not defined"),
])
def test_hostile_machine_code_is_stopped_with_a_clear_error(
        tight_runtime: Runtime, name: str, source: str, error: type[Exception], message: str):
    started = time.monotonic()
    with pytest.raises(error, match=message):
        step(tight_runtime, source)
    assert time.monotonic() - started < tight_runtime.limits.slice_s + 2.0


@pytest.mark.parametrize(("name", "allow_write", "error", "message"), [
    ("authorizer loops", "() => { while (true) {} }", TimeLimitError, "time limit"),
    ("authorizer throws", "() => { throw new Error('nope'); }", RejectedByAuthorizerError,
     "allowWrite threw Error: nope"),
    ("authorizer returns a promise", "async () => true", RejectedByAuthorizerError, "Promise"),
])
def test_hostile_authorizers(tight_runtime: Runtime, name: str, allow_write: str,
                             error: type[Exception], message: str):
    source = bundle("""{ id: "a", initial: "a", states: { a: {} } }""", allow_write=allow_write)
    with pytest.raises(error, match=message):
        tight_runtime.create(load(tight_runtime, source), instance_name="i", context=None,
                             auth_context={}, on_commit=lambda m: None)


def run_service(rt: Runtime, service: str) -> tuple[list, object]:
    """GO starts `service` (a function returning a promise) in state b; b's `onError` leads to
    `failed`. The committed macrosteps, and the step's result."""
    source = bundle("""{ id: "jobs", predictableActionArguments: true, initial: "a",
      states: {
        a: { on: { GO: "b" } },
        b: { invoke: { src: __SERVICE__, onError: "failed" } },
        failed: {} } }""".replace("__SERVICE__", service))
    version = load(rt, source)
    first = rt.create(version, instance_name="i", context=None, auth_context={},
                      on_commit=lambda m: None)
    commits: list = []
    res = rt.send(version, instance_name="i", state_json=first.final.state_json, event="GO",
                  auth_context={}, on_commit=commits.extend)
    return commits, res


def assert_stopped_by(res: object, commits: list, limit: str) -> None:
    """The transition into b stays committed; the step reports the limit on its result and in
    a log line, and cuts the service off (its error.platform comes before the next event)."""
    assert [m.view.value for m in commits] == ["b"]
    assert res.error is not None and limit in res.error
    assert any(limit in line.text and "[backstate]" in line.text for line in res.logs)
    assert res.cut_off == ["jobs.b:invocation[0]"]


def test_a_microtask_loop_in_a_service_is_stopped_after_the_committed_transition(
        tight_runtime: Runtime):
    # Each job allocates a little: whichever limit comes first (the slice's time or the VM's
    # memory, depending on the machine's speed) stops it, and either is reported.
    commits, res = run_service(tight_runtime, """() => new Promise(() => {
          const f = () => Promise.resolve().then(f);
          f();
        })""")
    limit = "out of memory" if res.error and "out of memory" in res.error else "time limit"
    assert_stopped_by(res, commits, limit)


def test_a_busy_loop_in_a_service_is_stopped_by_the_time_limit(tight_runtime: Runtime):
    commits, res = run_service(
        tight_runtime, "() => Promise.resolve().then(() => { while (true) {} })")
    assert_stopped_by(res, commits, "time limit")


@pytest.fixture(scope="module")
def patient_runtime() -> Iterator[Runtime]:
    """A small memory cap and a time limit no machine reaches by allocating: memory runs out
    first on any machine, however fast or slow."""
    rt = Runtime(RuntimeLimits(memory_bytes=48 << 20, slice_s=120.0, window_s=240.0))
    yield rt
    rt.close()


@pytest.mark.parametrize("service", [
    # the error rejects a promise nobody awaits: only the VM's count of refused allocations
    # knows that memory ran out
    """() => new Promise(() => {
      const kept = [];
      const f = () => {
        kept.push(new Array(1e4).fill(kept.length));
        return Promise.resolve().then(f);
      };
      f();
    })""",
    # the machine catches the error itself and settles the service as if nothing happened
    """() => Promise.resolve().then(() => {
      const kept = [];
      try { for (;;) kept.push(new Array(1e4).fill(1)); } catch (err) { kept.length = 0; }
      return "survived";
    })""",
])
def test_running_out_of_memory_in_a_service_is_reported_like_the_time_limit(
        patient_runtime: Runtime, service: str):
    commits, res = run_service(patient_runtime, service)
    assert_stopped_by(res, commits, "out of memory")
    later = patient_runtime.send(
        load(patient_runtime, bundle("""{ id: "jobs", initial: "b", states: {
          b: { invoke: { src: () => new Promise(() => {}), onError: "failed" } },
          failed: {} } }""")),
        instance_name="i", state_json=commits[-1].state_json, event="NEXT", auth_context={},
        cut_off=res.cut_off, on_commit=lambda m: None)
    assert later.macrosteps[0].view.value == "failed"   # error.platform, before NEXT


@pytest.mark.parametrize(("source", "message"), [
    ("import fs from 'fs'; export default 1;", "imports 'fs'"),
    ("import { createHash } from 'node:crypto'; export default 1;", "imports 'node:crypto'"),
    ("export default {", "not a valid ES module: SyntaxError"),
    ("export default 42; export const allowRead = () => true;"
     " export const allowWrite = () => true;",
     "default export must be an XState 4 machine"),
    (bundle("{ initial: 'a', states: { a: {} } }")
     .replace("export const allowRead", "const allowRead"),
     "allowRead"),
    ("process.env.X; export default 1;", "process is not defined"),
    ("while (true) {}", "time limit"),
    ("const a = []; for (;;) a.push(new Array(1e5).fill(1));", "out of memory"),
])
def test_broken_bundles_are_rejected_with_a_message_naming_the_problem(
        tight_runtime: Runtime, source: str, message: str):
    with pytest.raises(BundleError, match=message) as err:
        tight_runtime.validate_bundle(source)
    assert err.value.parameter == "code"
