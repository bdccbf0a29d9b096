"""Resetting a used VM to its snapshot: byte for byte, with the bottom of the stack dropped."""

from __future__ import annotations

import ctypes
import mmap

import pytest

from runtime.engine import Runtime
from runtime.sandbox.snapshot import CAN_DROP, GRANULE, PAGE, STACK_HOT, Run, runs_of
from tests.runtime.conftest import bundle, load

linux_only = pytest.mark.skipif(not CAN_DROP, reason="drop runs exist on Linux only")

COUNTER = bundle("""{
  id: "c", predictableActionArguments: true, initial: "on", context: { n: 0 },
  states: { on: { on: { inc: { actions: assign((c) => ({ n: c.n + 1 })) } } } },
}""")


def test_runs_cut_memory_into_copies_zeros_and_the_droppable_bottom_of_the_stack() -> None:
    memory = bytes(16 * GRANULE) + b"\x01" * GRANULE + bytes(GRANULE) + b"\x02" * 10
    cut = 16 * GRANULE - STACK_HOT
    assert runs_of(memory, droppable=True) == (
        Run(0, cut, "drop"), Run(cut, 16 * GRANULE, "zero"),
        Run(16 * GRANULE, 17 * GRANULE, "copy"), Run(17 * GRANULE, 18 * GRANULE, "zero"),
        Run(18 * GRANULE, len(memory), "copy"),
    )
    assert [run.kind for run in runs_of(memory, droppable=False)] == [
        "zero", "copy", "zero", "copy"]


def test_only_a_zero_run_at_address_zero_larger_than_the_hot_top_is_dropped() -> None:
    assert [run.kind for run in runs_of(b"\x01" + bytes(4 * GRANULE), droppable=True)] == [
        "copy", "zero"]
    small = bytes(GRANULE) + b"\x01"
    assert [run.kind for run in runs_of(small, droppable=True)] == ["zero", "copy"]


@linux_only
def test_a_reset_vm_is_byte_identical_to_its_snapshot_after_deep_recursion(
        runtime: Runtime) -> None:
    version = load(runtime, COUNTER)
    snapshot = version.snapshot
    drop = [run for run in snapshot.runs if run.kind == "drop"]
    assert drop and drop[0].start == 0 and drop[0].end >= 512 << 10
    vm = runtime.engine.clone(snapshot, runtime.limits.memory_bytes)
    vm.set_deadline(5.0)
    # Recursion ~400 KiB deep into the stack (frames of 200 locals; wasmtime's own stack limit
    # stops plain recursion first), and garbage all over the heap.
    locals_ = ", ".join(f"a{i} = n + {i}" for i in range(200))
    depth = vm.eval(f"function f(n) {{ let {locals_}; return n ? a199 - 198 - n + f(n - 1) : 0 }}"
                    "globalThis.junk = Array.from({length: 300}, (_, i) => ({i})); f(200)")
    assert depth == "200"
    memory = vm.read_bytes(0, snapshot.size)
    assert memory[: drop[0].end] != bytes(drop[0].end)   # the deep stack was written
    assert vm.reset()
    assert _resident_pages(vm, drop[0]) == 0             # given back, not zeroed (reading
    assert vm.read_bytes(0, snapshot.size) == snapshot.memory   # it maps zero pages in)
    assert vm.eval("typeof globalThis.junk") == "undefined"


@linux_only
def test_a_new_vm_does_not_touch_the_bottom_of_its_stack(runtime: Runtime) -> None:
    version = load(runtime, COUNTER)
    vm = runtime.engine.clone(version.snapshot, runtime.limits.memory_bytes)
    drop = next(run for run in version.snapshot.runs if run.kind == "drop")
    assert _resident_pages(vm, drop) == 0
    assert vm.read_bytes(0, version.snapshot.size) == version.snapshot.memory


def _resident_pages(vm: object, run: Run) -> int:
    base = vm._base()  # type: ignore[attr-defined]
    pages = (run.end - run.start) // PAGE
    vector = (ctypes.c_ubyte * pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert libc.mincore(base + run.start, run.end - run.start, vector) == 0, ctypes.get_errno()
    assert mmap.PAGESIZE == PAGE
    return sum(byte & 1 for byte in vector)
