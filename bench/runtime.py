"""Runtime benchmark: what one event costs in the sandbox, through the Python step API.

Prints, for a toggle machine and for a machine with an invoked promise that fetches from a
loopback server: median and p99 time per event (each event in a fresh VM restored from the
persisted JSON, exactly as the server runs it), events/s on one core and (toggle) on all CPUs
at once, the cold load of a new version, and memory per VM.

Targets (issue #2): <= 1.5 ms median per simple event (>= 650 events/s per core), <= 50 ms to
load a new version.

    python bench/runtime.py [--events 3000]
"""

from __future__ import annotations

import argparse
import http.server
import json
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpus
from runtime.engine import Runtime, RuntimeLimits
from runtime.sandbox.fetch import EgressPolicy, Fetcher

TOGGLE = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "toggle", predictableActionArguments: true, initial: "off", context: { count: 0 },
  states: {
    off: { on: { TOGGLE: { target: "on", actions: assign({ count: (c) => c.count + 1 }) } } },
    on: { on: { TOGGLE: "off" } },
  },
});
export const allowRead = () => true;
export const allowWrite = ({ authContext }) => authContext.sub !== "blocked";
"""

FETCHER = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "fetcher", predictableActionArguments: true, initial: "idle", context: { n: 0 },
  states: {
    idle: { on: { GO: "loading" } },
    loading: {
      invoke: { src: async () => (await (await fetch(%s)).json()).n,
                onDone: { target: "idle", actions: assign({ n: (c, e) => c.n + e.data }) } },
    },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def loopback_server() -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # else the body waits ~40 ms for a delayed ACK

        def do_GET(self) -> None:
            body = b'{"n": 1}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/n"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_events(rt: Runtime, source: str, event: str, count: int) -> tuple[list[float], float]:
    version = rt.compile(source)
    state = rt.create(version, instance_name="bench", context=None, auth_context={"sub": "u"},
                      on_commit=lambda m: None).final.state_json
    for _ in range(min(200, count)):   # warm the pool and the caches
        state = rt.send(version, instance_name="bench", state_json=state, event=event,
                        auth_context={"sub": "u"}, on_commit=lambda m: None).final.state_json
    samples = []
    cpu0 = time.process_time()
    for _ in range(count):
        t0 = time.perf_counter()
        state = rt.send(version, instance_name="bench", state_json=state, event=event,
                        auth_context={"sub": "u"}, on_commit=lambda m: None).final.state_json
        samples.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    return samples, cpu


def report_events(label: str, samples: list[float], cpu: float) -> None:
    med, p99 = statistics.median(samples) * 1e3, percentile(samples, 0.99) * 1e3
    per_core = len(samples) / cpu if cpu else float("nan")
    wall = len(samples) / sum(samples)
    print(f"{label:34s} median {med:6.3f} ms   p99 {p99:6.3f} ms   "
          f"{wall:7.0f} events/s (1 thread, wall)   {per_core:7.0f} events/s per core (CPU time)")


def all_cores(rt: Runtime, count: int) -> tuple[int, float]:
    """Events/s with one sender thread per CPU (steps release the GIL inside wasm): the most
    steps this machine runs per second with nothing else to do, no persistence included."""
    threads = cpus()
    with ThreadPoolExecutor(threads) as pool:
        runs = list(pool.map(lambda _: run_events(rt, TOGGLE, "TOGGLE", count), range(threads)))
    # The threads' timed windows overlap (same work, started together): their rates add up.
    return threads, sum(len(samples) / sum(samples) for samples, _cpu in runs)


def cold_loads(rt: Runtime, count: int) -> list[float]:
    samples = []
    for i in range(count):
        source = TOGGLE.replace('id: "toggle"', f'id: "toggle{i}"')
        t0 = time.perf_counter()
        rt.compile(source)
        samples.append(time.perf_counter() - t0)
    return samples


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_per_vm(rt: Runtime, count: int) -> tuple[float, float, int]:
    version = rt.compile(TOGGLE)
    before = rss_mb()
    vms = [version.acquire() for _ in range(count)]
    for vm in vms:   # touch them the way an event does
        vm.call(json.dumps({"op": "inspect"}))
    after = rss_mb()
    linear = vms[0].linear_memory()
    used = vms[0].memory_used()
    return (after - before) / count, linear / 2**20, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()

    t0 = time.perf_counter()
    rt = Runtime(RuntimeLimits(), fetcher=Fetcher(EgressPolicy(allow_loopback=True)))
    print(f"process start-up (engine, prelude, xstate)  {(time.perf_counter() - t0) * 1e3:.0f} ms")

    report_events("toggle: one event", *run_events(rt, TOGGLE, "TOGGLE", args.events))
    threads, rate = all_cores(rt, args.events)
    print(f"{'toggle: all CPUs at once':34s} {rate:7.0f} events/s ({threads} threads; the "
          "sandbox's ceiling here, before any persistence)")
    fetcher = FETCHER % json.dumps(loopback_server())
    report_events("promise + loopback fetch: one event",
                  *run_events(rt, fetcher, "GO", max(200, args.events // 5)))

    loads = cold_loads(rt, 50)
    print(f"{'cold load of a new version':34s} median {statistics.median(loads) * 1e3:6.2f} ms"
          f"   p99 {percentile(loads, 0.99) * 1e3:6.2f} ms")
    rss, linear, used = memory_per_vm(rt, 100)
    print(f"{'memory per VM':34s} {rss:.2f} MB RSS each (100 live VMs), {linear:.2f} MB linear "
          f"memory, {used / 2**20:.2f} MB in use by QuickJS")


if __name__ == "__main__":
    main()
