"""Ephemeral children spawned inside `assign`, whatever the bundle's build: with xstate
imported (resolved by the sandbox) and with xstate inlined by esbuild, as smply 0.1.18 builds
(the bundle then spawns with its own copy of xstate, which the runtime's interpreter must still
run)."""

from __future__ import annotations

from typing import Any

import pytest

from api.services.builder import Builder
from runtime.engine import Runtime
from runtime.errors import MachineError
from runtime.results import Macrostep, StepResult
from tests.runtime.conftest import load

SPAWNER = """
import { createMachine, assign, spawn, send, sendParent } from "xstate";
const log = (line) => assign({ log: (ctx) => [...ctx.log, line] });
const kid = createMachine({
  id: "kid", predictableActionArguments: true, initial: "idle",
  states: { idle: {
    entry: sendParent({ type: "ready" }),
    on: { ping: { actions: sendParent((ctx, e) => ({ type: "pong", n: e.n })) } },
  } },
});
export default createMachine({
  id: "spawner", predictableActionArguments: true, initial: "idle",
  context: { ref: null, log: [] },
  states: {
    idle: { on: { go: { target: "waiting",
                        actions: [assign({ ref: () => spawn(kid, "kid") }), log("spawned")] } } },
    waiting: { on: {
      ready: { actions: [log("ready"), send({ type: "ping", n: 1 }, { to: (ctx) => ctx.ref })] },
      pong: [
        { cond: (ctx, e) => e.n === 1,
          actions: [log("pong 1"), send({ type: "ping", n: 2 }, { to: "kid" })] },
        { target: "done", actions: log("pong 2") },
      ],
    } },
    done: { type: "final" },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

CALLBACK = """
import { createMachine, assign, spawn } from "xstate";
export default createMachine({
  id: "cb", predictableActionArguments: true, initial: "idle", context: { ref: null },
  states: { idle: { on: { go: { actions: assign({
    ref: () => spawn((sendBack) => { sendBack({ type: "hello" }); }, "cb") }) } } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


class Commits(list[Macrostep]):
    def __call__(self, steps: list[Macrostep]) -> None:
        self.extend(steps)


def built(source: str, inlined: bool) -> str:
    """The bundle smply 0.1.18 builds (xstate inlined), or a newer smply's (imported)."""
    if not inlined:
        source = source.replace('from "xstate"', 'from "npm:xstate"')
    code = Builder().build(source, "machine.js").code
    assert ('from"npm:xstate"' in code.replace(" ", "")) != inlined
    return code


def run(runtime: Runtime, code: str, event: Any) -> StepResult:
    version = load(runtime, code)
    made = runtime.create(version, instance_name="i1", context=None, auth_context={},
                          on_commit=Commits())
    return runtime.send(version, instance_name="i1", state_json=made.final.state_json,
                        event=event, auth_context={}, on_commit=Commits())


@pytest.mark.parametrize("inlined", [True, False], ids=["xstate-inlined", "xstate-imported"])
def test_a_spawned_child_runs_answers_its_parent_and_receives_sends(runtime: Runtime,
                                                                    inlined: bool):
    result = run(runtime, built(SPAWNER, inlined), "go")
    assert result.error is None, result.error
    assert result.final.context["log"] == ["spawned", "ready", "pong 1", "pong 2"]
    assert result.final.view.done is True


def test_a_spawned_callback_in_an_inlined_bundle_fails_loudly(runtime: Runtime):
    with pytest.raises(MachineError, match="not supported"):
        result = run(runtime, built(CALLBACK, inlined=True), "go")
        if result.error is not None:
            raise result.error


def test_a_child_spawned_into_a_list_runs_too(runtime: Runtime):
    source = (SPAWNER.replace('ref: () => spawn(kid, "kid")', 'refs: () => [spawn(kid, "kid")]')
              .replace("{ to: (ctx) => ctx.ref }", "{ to: (ctx) => ctx.refs[0] }"))
    result = run(runtime, built(source, inlined=True), "go")
    assert result.error is None, result.error
    assert result.final.context["log"] == ["spawned", "ready", "pong 1", "pong 2"]


def test_spawn_ephemeral_instance_runs_callbacks_in_an_inlined_bundle(runtime: Runtime):
    # @statebacked/machine's spawnEphemeralInstance (0.6.3+) calls the runtime's spawn hook,
    # which spawns with the runtime's xstate: callbacks run too, whatever the build.
    source = """
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "cb", predictableActionArguments: true, initial: "idle", context: { ref: null },
  states: {
    idle: { on: { hello: "greeted", go: { actions: assign({ ref: () =>
      globalThis.__statebacked_rt.spawn((sendBack) => { sendBack({ type: "hello" }); }, "cb"),
    }) } } },
    greeted: { type: "final" },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""
    result = run(runtime, built(source, inlined=True), "go")
    assert result.error is None, result.error
    assert result.final.view.value == "greeted"
