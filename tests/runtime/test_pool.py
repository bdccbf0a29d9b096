"""Warm VMs: which VM serves a step, what it keeps live, and when it is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runtime.engine import LoadedVersion, Runtime, RuntimeLimits
from runtime.errors import ConflictError
from runtime.results import Macrostep, StepResult
from tests.runtime.conftest import bundle

COUNTER = bundle("""{ id: "c", predictableActionArguments: true, initial: "on",
  context: { n: 0 },
  states: { on: { on: { INC: { actions: assign({ n: (c) => c.n + 1 }) },
                        BOOM: { actions: () => { throw new Error("boom"); } } } } } }""")


@pytest.fixture(scope="module")
def rt() -> Iterator[Runtime]:
    runtime = Runtime(RuntimeLimits(window_s=5.0, idle_vms=3, pool_size=2, live_per_vm=2,
                                    recycle_steps=1_000))
    yield runtime
    runtime.close()


class Instance:
    """An instance as the server holds it: its committed state JSON and sequence number."""

    def __init__(self, rt: Runtime, version: LoadedVersion, key: str):
        self.rt, self.version, self.key = rt, version, key
        result = rt.create(version, instance_name=key, context=None, auth_context={},
                           on_commit=lambda m: None, instance_key=key)
        self.state_json, self.seq = result.final.state_json, len(result.macrosteps)

    def send(self, event: str, on_commit: Any = lambda m: None) -> StepResult:
        result = self.rt.send(self.version, instance_name=self.key, state_json=self.state_json,
                              event=event, auth_context={}, on_commit=on_commit,
                              instance_key=self.key, seq=self.seq)
        self.state_json, self.seq = result.final.state_json, self.seq + len(result.macrosteps)
        return result


def count(result: StepResult) -> int:
    n: int = result.final.context["n"]
    return n


def test_the_next_event_runs_on_the_live_interpreter_at_the_rows_sequence(rt: Runtime) -> None:
    version = rt.compile(COUNTER)
    a = Instance(rt, version, "a")
    assert [count(a.send("INC")) for _ in range(3)] == [1, 2, 3]
    assert version.vms.warm_steps == 3


def test_a_live_state_behind_the_row_is_not_used(rt: Runtime) -> None:
    version = rt.compile(COUNTER)
    a = Instance(rt, version, "a")
    a.send("INC")
    # Another process stepped the instance: the row is ahead of what this VM keeps live.
    other = rt.send(rt.compile(COUNTER), instance_name="a", state_json=a.state_json,
                    event="INC", auth_context={}, on_commit=lambda m: None)
    a.state_json, a.seq = other.final.state_json, a.seq + 1
    before = version.vms.warm_steps
    assert count(a.send("INC")) == 3   # restored from the row, not the stale live state
    assert version.vms.warm_steps == before


def test_a_failed_step_drops_its_vm_and_what_it_kept(rt: Runtime) -> None:
    version = rt.compile(COUNTER)
    a = Instance(rt, version, "a")
    a.send("INC")
    with pytest.raises(Exception, match="boom"):
        a.send("BOOM")

    def refuse(steps: list[Macrostep]) -> None:   # the commit is refused after the VM moved on
        raise ConflictError("the instance was taken over")

    with pytest.raises(ConflictError):
        a.send("INC", on_commit=refuse)
    before = version.vms.warm_steps
    assert count(a.send("INC")) == 2   # from the row: the refused step left no trace
    assert version.vms.warm_steps == before


def test_a_vm_that_trapped_at_the_end_of_a_step_is_never_given_out_again(rt: Runtime) -> None:
    """A step whose settle window ran out returns normally (its services cut off) although
    the interrupt killed its VM: that VM must not serve the next step."""
    version = rt.compile(COUNTER)
    taken = version.vms.acquire()
    taken.vm.dead = "wasm trap: interrupt"   # as the window's deadline leaves it
    version.vms.release(taken)
    for _ in range(3):
        again = version.vms.acquire()
        assert again.vm is not taken.vm and not again.vm.dead
        version.vms.release(again)


def test_a_vm_keeps_a_bounded_number_of_instances(rt: Runtime) -> None:
    version = rt.compile(COUNTER)
    made = [Instance(rt, version, key) for key in "abc"]   # live_per_vm = 2: "a" goes
    before = version.vms.warm_steps
    made[0].send("INC")
    made[2].send("INC")
    assert version.vms.warm_steps == before + 1


def test_idle_vms_are_bounded_across_versions(rt: Runtime) -> None:
    versions = [rt.compile(COUNTER.replace('id: "c"', f'id: "c{n}"')) for n in range(5)]
    for n, version in enumerate(versions):
        Instance(rt, version, f"i{n}")
    assert len(rt._pool._idle) == 3   # idle_vms
    assert sum(len(v.vms._idle) for v in versions) == 3


def test_vms_are_recycled_after_a_number_of_steps() -> None:
    runtime = Runtime(RuntimeLimits(window_s=5.0, recycle_steps=3))
    try:
        version = runtime.compile(COUNTER)
        a = Instance(runtime, version, "a")        # step 1
        a.send("INC")                              # 2 (warm)
        a.send("INC")                              # 3 (warm): recycled after it
        assert count(a.send("INC")) == 3           # a new VM, restored from the row
        assert version.vms.warm_steps == 2
    finally:
        runtime.close()


def test_strict_vms_keep_nothing_live(strict_runtime: Runtime) -> None:
    version = strict_runtime.compile(COUNTER)
    a = Instance(strict_runtime, version, "a")
    assert [count(a.send("INC")) for _ in range(2)] == [1, 2]
    assert version.vms.warm_steps == 0
