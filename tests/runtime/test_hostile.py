"""Hostile and broken bundles: each ends in a clear error, and the host keeps working."""

from __future__ import annotations

import time

import pytest

from runtime.engine import Runtime
from runtime.errors import (
    BundleError,
    MachineError,
    MemoryLimitError,
    RejectedByAuthorizerError,
    SandboxError,
    StackOverflowError,
    TimeLimitError,
)
from tests.runtime.conftest import bundle

HEALTHY = bundle("""{ id: "ok", predictableActionArguments: true, initial: "a",
  states: { a: { on: { GO: "b" } }, b: {} } }""")


def on_go(action: str = "() => {}", cond: str = "() => true") -> str:
    machine = """{ id: "h", predictableActionArguments: true, initial: "a", context: { x: 0 },
      states: {
        a: { on: { GO: { target: "b", cond: __COND__, actions: __ACTION__ } } },
        b: {} } }"""
    return bundle(machine.replace("__COND__", cond).replace("__ACTION__", action))


def step(rt: Runtime, source: str, event: str = "GO", auth: dict | None = None):
    version = rt.load(source, source)
    first = rt.create(version, instance_name="i", context=None, auth_context={},
                      on_commit=lambda m: None)
    commits: list = []
    try:
        return rt.send(version, instance_name="i", state_json=first.final.state_json, event=event,
                       auth_context=auth or {}, on_commit=commits.append)
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
        tight_runtime.create(tight_runtime.load(source, source), instance_name="i", context=None,
                             auth_context={}, on_commit=lambda m: None)


def test_a_microtask_loop_in_a_service_is_stopped_after_the_committed_transition(
        tight_runtime: Runtime):
    source = bundle("""{ id: "jobs", predictableActionArguments: true, initial: "a",
      states: {
        a: { on: { GO: "b" } },
        b: { invoke: { src: () => new Promise(() => {
          const f = () => Promise.resolve().then(f);
          f();
        }) } } } }""")
    version = tight_runtime.load(source, source)
    first = tight_runtime.create(version, instance_name="i", context=None, auth_context={},
                                 on_commit=lambda m: None)
    commits: list = []
    res = tight_runtime.send(version, instance_name="i", state_json=first.final.state_json,
                             event="GO", auth_context={}, on_commit=commits.append)
    assert [m.view.value for m in commits] == ["b"]
    assert res.error is not None and "time limit" in res.error
    assert res.cut_off == ["jobs.b:invocation[0]"]


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
