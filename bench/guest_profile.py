"""Where one event's time goes, inside the guest and around it, through the Python step API.

For each machine (the toggle of bench/runtime.py, the 40-state machine of bench/http_events.py;
`--machines` also takes `counter`, http_events.py's, and `wide`, a context of 300 records)
in strict mode (every event in a VM reset to the snapshot, its state restored from JSON) and
warm mode (the instance's interpreter kept live in its VM), it sends many events and prints
the median microseconds of each phase and its share of the median event:

* guest phases, timed by the harness's phase recorder (`profile: true` in the request, answered
  by the `profile` op; js_shims/harness.js): decode (JSON.parse of the request), begin (clock
  and seed), op (the op's own bookkeeping), restore (State.create of the persisted JSON),
  authorize (allowWrite), start (a new interpreter started on the state), send (the xstate
  transition and its actions), checkJson / persistable / view / record (each macrostep's
  record), poll (the reply's contents), encode (JSON.stringify of the reply);
* host phases: encode_request (the request's JSON), call overhead (the VM call minus the
  guest's own time: copies, malloc/free, ctypes, the first JSON.parse), run_jobs, reply
  json.loads, state json.dumps (`_macrostep`'s re-encoding of the state), reset (strict: the
  VM back to its snapshot), and the rest (pool, Step and engine bookkeeping, the timing
  wrappers themselves).

Profiling is done by wrapping a few functions of runtime.step and runtime.sandbox.vm in this
process; the `profile` op's extra call is timed and taken out of the event's total. A run
without profiling gives the plain median per event beside it, to show what the recorder costs.

    python bench/guest_profile.py [--events 2000] [--machines toggle,big] [--modes strict,warm]

`--against-js DIR` instead compares this checkout's js_shims with DIR's (another checkout's
js_shims, its node_modules included) in one process, in alternating batches of events, so both
see the machine in the same phase: a change of the guest's JavaScript alone measured against
its parent. It prints each side's median wall and mean CPU time per event.

    python bench/guest_profile.py --against-js ../base/js_shims [--events 4000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_events import COUNTER, big_machine
from bench.runtime import TOGGLE
from runtime import step as step_module
from runtime.engine import JS_DIR, LoadedVersion, Runtime, RuntimeLimits
from runtime.sandbox.vm import VM

# A counter whose context holds 300 records (about 20 KB of JSON): what grows with the context.
WIDE = """
import { createMachine, assign } from "npm:xstate";
const items = Array.from({ length: 300 },
  (_, i) => ({ id: i, name: "item " + i, tags: ["a", "b"], price: i * 1.5 }));
export default createMachine({
  id: "wide", predictableActionArguments: true, initial: "on", context: { n: 0, items },
  states: { on: { on: { inc: { actions: assign({ n: (c) => c.n + 1 }) } } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""
MACHINES = {"toggle": (TOGGLE, "TOGGLE"), "counter": (COUNTER, "inc"),
            "big": (big_machine(), "inc"), "wide": (WIDE, "inc")}
GUEST = ("decode", "begin", "op", "restore", "authorize", "start", "send", "checkJson",
         "persistable", "view", "record", "poll", "encode")
HOST = ("encode_request", "call overhead", "run_jobs", "reply json.loads", "state json.dumps",
        "reset", "rest")
AUTH = {"sub": "u"}

Sample = dict[str, float]   # phase -> seconds, for one event


class Profiler:
    """Wraps the step's calls while active; one Sample per event."""

    def __init__(self) -> None:
        self.event: Sample = defaultdict(float)

    def take(self) -> Sample:
        sample, self.event = self.event, defaultdict(float)
        return sample

    def add(self, phase: str, seconds: float) -> None:
        self.event[phase] += seconds

    @contextmanager
    def active(self) -> Iterator[None]:
        patches = [
            (step_module.Step, "call", lambda step, args: self._step_call(step, args)),
            (step_module, "encode_request", self._timed("encode_request",
                                                        step_module.encode_request)),
            (step_module, "json", _TimedJson(self)),
            (VM, "call", lambda vm, arg: self._vm_call(vm, arg)),
            (VM, "run_jobs", self._timed_method("run_jobs", VM.run_jobs)),
            (VM, "reset", self._timed_method("reset", VM.reset)),
        ]
        saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        for owner, name, value in patches:
            setattr(owner, name, value)
        try:
            yield
        finally:
            for owner, name, value in saved:
                setattr(owner, name, value)

    def _timed(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.add(phase, time.perf_counter() - t0)
        return timed

    def _timed_method(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        timed = self._timed(phase, fn)
        return lambda vm, *args: timed(vm, *args)

    def _step_call(self, step: Any, args: dict[str, Any]) -> Any:
        return _STEP_CALL(step, {**args, "profile": True})

    def _vm_call(self, vm: VM, arg: str) -> str:
        t0 = time.perf_counter()
        answer = _VM_CALL(vm, arg)
        took = time.perf_counter() - t0
        if '"profile": true' not in arg:
            self.add("unprofiled calls", took)
            return answer
        t1 = time.perf_counter()
        guest = json.loads(_VM_CALL(vm, '{"op":"profile"}'))["ok"]
        self.add("excluded", time.perf_counter() - t1)
        ms = guest["ms"]
        for phase, value in ms.items():
            self.add(phase, value / 1e3)
        # The guest's window starts after the first JSON.parse, which it repeats as `decode`.
        self.add("call overhead", took - guest["totalMs"] / 1e3 - ms.get("decode", 0) / 1e3)
        return answer


class _TimedJson:
    """runtime.step's `json`: loads is the reply's decoding, dumps the state's re-encoding."""

    def __init__(self, profiler: Profiler):
        self._profiler = profiler

    def loads(self, text: str) -> Any:
        t0 = time.perf_counter()
        try:
            return json.loads(text)
        finally:
            self._profiler.add("reply json.loads", time.perf_counter() - t0)

    def dumps(self, value: Any, **kwargs: Any) -> str:
        t0 = time.perf_counter()
        try:
            return json.dumps(value, **kwargs)
        finally:
            self._profiler.add("state json.dumps", time.perf_counter() - t0)


_STEP_CALL = step_module.Step.call
_VM_CALL = VM.call


class Instance:
    """One instance driven event after event, as the server would: strict mode passes only
    the persisted state; warm mode also its key and sequence number."""

    def __init__(self, rt: Runtime, version: LoadedVersion, event: str):
        self.rt, self.version, self.event = rt, version, event
        self.key, self.seq = str(uuid.uuid4()), 0
        result = rt.create(version, instance_name="bench", context=None, auth_context=AUTH,
                           on_commit=_ignore, instance_key=self.key)
        self.state = result.final.state_json
        self.seq = len(result.macrosteps)

    def send(self) -> None:
        result = self.rt.send(self.version, instance_name="bench", state_json=self.state,
                              event=self.event, auth_context=AUTH, on_commit=_ignore,
                              instance_key=self.key, seq=self.seq)
        self.state = result.final.state_json
        self.seq += len(result.macrosteps)


def _ignore(_steps: object) -> None:
    pass


def plain(instance: Instance, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        instance.send()
        samples.append(time.perf_counter() - t0)
    return samples


def profiled(instance: Instance, count: int) -> list[Sample]:
    profiler = Profiler()
    samples = []
    with profiler.active():
        for _ in range(count):
            t0 = time.perf_counter()
            instance.send()
            wall = time.perf_counter() - t0
            sample = profiler.take()
            sample["total"] = wall - sample.pop("excluded", 0.0)
            samples.append(sample)
    return samples


def host_rest(sample: Sample) -> float:
    guest_and_host = sum(sample.get(p, 0.0) for p in GUEST + HOST if p != "rest")
    return sample["total"] - guest_and_host - sample.get("unprofiled calls", 0.0)


def report(label: str, samples: list[Sample], plain_samples: list[float]) -> None:
    for sample in samples:
        sample["rest"] = host_rest(sample)
    total = statistics.median(s["total"] for s in samples)
    print(f"\n{label}: median {total * 1e6:.0f} µs per event profiled, "
          f"{statistics.median(plain_samples) * 1e6:.0f} µs unprofiled "
          f"({len(samples)} events each)")
    print(f"  {'phase':22s} {'median µs':>10s} {'share':>7s}")
    for side, names in (("guest", GUEST), ("host", HOST)):
        for name in names:
            values = [s.get(name, 0.0) for s in samples]
            if not any(values):
                continue
            med = statistics.median(values)
            print(f"  {side + ' ' + name:22s} {med * 1e6:10.1f} {med / total:7.1%}")
    guest = statistics.median(sum(s.get(p, 0.0) for p in GUEST) for s in samples)
    print(f"  {'guest, all phases':22s} {guest * 1e6:10.1f} {guest / total:7.1%}")


def against(mode: str, name: str, other_js: Path, events: int, batch: int = 50) -> None:
    """This checkout's js_shims (`new`) against `other_js` (`base`), in alternating batches."""
    source, event = MACHINES[name]
    sides = {}
    for side, js_dir in (("base", other_js), ("new", JS_DIR)):
        rt = Runtime(RuntimeLimits(warm=mode == "warm"), js_dir=js_dir)
        sides[side] = Instance(rt, rt.compile(source), event)
        plain(sides[side], min(200, events))
    walls: dict[str, list[float]] = {"base": [], "new": []}
    cpu: dict[str, float] = {"base": 0.0, "new": 0.0}
    for _ in range(max(1, events // batch)):
        for side, instance in sides.items():
            c0 = time.process_time()
            walls[side] += plain(instance, batch)
            cpu[side] += time.process_time() - c0
    med = {side: statistics.median(w) * 1e6 for side, w in walls.items()}
    mean_cpu = {side: cpu[side] / len(walls[side]) * 1e6 for side in walls}
    print(f"{name}, {mode}: base {med['base']:.0f} µs wall (median), {mean_cpu['base']:.0f} µs "
          f"CPU (mean); new {med['new']:.0f} µs, {mean_cpu['new']:.0f} µs; new/base "
          f"x{med['new'] / med['base']:.3f} wall, x{mean_cpu['new'] / mean_cpu['base']:.3f} CPU")
    for instance in sides.values():
        instance.rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--machines", default="toggle,big")
    parser.add_argument("--modes", default="strict,warm")
    parser.add_argument("--against-js", type=Path)
    parser.add_argument("--plain", action="store_true",
                        help="no profile: each case's median wall and mean CPU time per event "
                        "(to compare checkouts run after one another)")
    args = parser.parse_args()
    if args.plain:
        for mode in args.modes.split(","):
            rt = Runtime(RuntimeLimits(warm=mode == "warm"))
            for name in args.machines.split(","):
                instance = Instance(rt, rt.compile(MACHINES[name][0]), MACHINES[name][1])
                plain(instance, min(200, args.events))
                c0 = time.process_time()
                walls = plain(instance, args.events)
                cpu = (time.process_time() - c0) / args.events
                print(f"{name}, {mode}: {statistics.median(walls) * 1e6:.0f} µs wall (median), "
                      f"{cpu * 1e6:.0f} µs CPU (mean) per event")
            rt.close()
        return
    if args.against_js:
        for mode in args.modes.split(","):
            for name in args.machines.split(","):
                against(mode, name, args.against_js, args.events)
        return
    for mode in args.modes.split(","):
        rt = Runtime(RuntimeLimits(warm=mode == "warm"))
        for name in args.machines.split(","):
            source, event = MACHINES[name]
            instance = Instance(rt, rt.compile(source), event)
            plain(instance, min(200, args.events))   # warm the pool and the caches
            # Alternate plain and profiled halves so both see the machine in the same phase.
            half = args.events // 2
            plain_samples = plain(instance, half)
            samples = profiled(instance, half)
            plain_samples += plain(instance, half)
            samples += profiled(instance, half)
            report(f"{name}, {mode}", samples, plain_samples)
        rt.close()


if __name__ == "__main__":
    main()
