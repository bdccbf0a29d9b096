"""Realtime benchmark: push latency of committed states to `/rt` subscribers of a real
`backstate serve`.

1,000 subscribers (one WebSocket connection each, each with an auth context of its own, as
players have) spread evenly over 100 instances, held by a load-generator process of their own;
events are sent at a fixed rate to the instances in turn, so each event is pushed to 10
subscribers. Prints the push latency — from the state's `ts` (stamped as its commit begins) to
the frame's arrival at a subscriber — as p50 / p99 / max, the frames received against those
expected (with any repeated or out-of-order state counted), and the server's CPU: per event with
nobody subscribed, per event with the subscribers, and the difference per delivered frame.

Target (issue #15): p99 <= 50 ms.

    python bench/realtime.py [--subscribers 1000] [--instances 100] [--rate 50] [--seconds 20]
                             [--workers N] [--shared-auth] [--postgres URL] [--skip-sqlite]

`--workers` defaults to one server process per CPU (subscribers and events then land on both,
so states also cross processes); `--shared-auth` gives all subscribers one auth context (one
`allowRead` per state instead of one per subscriber).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.tokens import mint  # noqa: E402
from bench.http_events import Connection, admin_key  # noqa: E402
from bench.machine import ChildrenCpu, Steal, cpus  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.databases import postgres_schema  # noqa: E402
from tests.support.server import run_server_processes  # noqa: E402

try:
    import uvloop
except ImportError:
    uvloop = None

GAME = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "game", predictableActionArguments: true, initial: "playing",
  context: { moves: 0, public: { moves: 0 } },
  states: { playing: { on: { move: { actions: assign((c) => ({
    moves: c.moves + 1, public: { moves: c.moves + 1 },
  })) } } } },
});
export const allowRead = ({ authContext }) => typeof authContext.sub === "string";
export const allowWrite = () => true;
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the load generator (its own process) -------------------------------------------------


@dataclass
class Subscriber:
    instance: str
    stamps: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def generate(config: dict[str, Any]) -> None:
    import websockets

    url, instances = config["url"], config["instances"]
    subscribers = [Subscriber(f"g{n % instances}") for n in range(config["subscribers"])]
    recording = False

    async def subscribe(n: int, sub: Subscriber, opened: asyncio.Semaphore) -> None:
        token = config["tokens"][n % len(config["tokens"])]
        async with opened:
            socket = await websockets.connect(f"{url.replace('http', 'ws', 1)}/rt?token={token}",
                                              compression=None, ping_interval=None,
                                              max_queue=None, open_timeout=60)
            await socket.send(json.dumps({"type": "subscribe-to-instance", "machineName": "game",
                                          "machineInstanceName": sub.instance,
                                          "requestId": f"r{n}"}))
            await socket.recv()                  # the current state
        connected.append(socket)
        async for frame in socket:
            arrived = time.time() * 1000
            assert isinstance(frame, str)
            start = frame.index('"ts":') + 5
            ts = int(frame[start:frame.index(",", start)])
            if recording:
                sub.stamps.append(ts)
                sub.latencies.append(arrived - ts)

    connected: list[Any] = []
    opened = asyncio.Semaphore(64)
    readers = [asyncio.ensure_future(subscribe(n, s, opened)) for n, s in enumerate(subscribers)]
    while len(connected) < len(subscribers):
        await asyncio.sleep(0.05)
        for reader in readers:
            if reader.done() and reader.exception():
                raise reader.exception()  # type: ignore[misc]
    _say("ready")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    recording = True
    cpu = time.process_time()
    sent = await send_events(url, config["token"], config["rate"], config["seconds"], instances)
    await asyncio.sleep(2.0)   # the last frames
    _say("done")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for reader in readers:
        reader.cancel()
    latencies = [lat for s in subscribers for lat in s.latencies]
    disorder = sum(1 for s in subscribers for a, b in zip(s.stamps, s.stamps[1:], strict=False)
                   if b <= a)
    print(json.dumps({
        "sent": sent, "frames": len(latencies), "disorder": disorder,
        "expected": sent * len(subscribers) // instances,
        "p50": statistics.median(latencies) if latencies else None,
        "p99": percentile(latencies, 0.99) if latencies else None,
        "max": max(latencies) if latencies else None,
        "generator_cpu": time.process_time() - cpu,
    }))


async def send_events(url: str, token: str, rate: float, seconds: float, instances: int) -> int:
    """`rate` events per second for `seconds`, to the instances in turn (open loop: a slow
    answer does not delay the next event); how many were answered 200."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(await Connection.open(url, token))
    ok = 0

    async def one(n: int) -> None:
        nonlocal ok
        connection = await pool.get()
        status = await connection.post(f"/machines/game/i/g{n % instances}/events",
                                       b'{"event":"move"}')
        ok += status == 200
        pool.put_nowait(connection)

    started, tasks = time.monotonic(), []
    for n in range(int(rate * seconds)):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(n)))
    await asyncio.gather(*tasks)
    return ok


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- the benchmark -------------------------------------------------------------------------


def run_phase(url: str, config: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """One run of the generator; its results and the server's CPU seconds while it sent."""
    command = [sys.executable, __file__, "--generate"]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as generator:
        assert generator.stdin is not None and generator.stdout is not None
        generator.stdin.write(json.dumps(config) + "\n")
        generator.stdin.flush()
        if generator.stdout.readline().strip() != "ready":
            raise SystemExit("the load generator failed to subscribe")
        with ChildrenCpu() as server:
            generator.stdin.write("go\n")
            generator.stdin.flush()
            if generator.stdout.readline().strip() != "done":
                raise SystemExit("the load generator failed")
        generator.stdin.write("report\n")
        generator.stdin.flush()
        result: dict[str, Any] = json.loads(generator.stdout.readline())
    return result, server.seconds


def bench(database_url: str, label: str, args: argparse.Namespace) -> None:
    keys = admin_key(database_url)
    env = {"BACKSTATE_WORKERS": str(args.workers)}
    with run_server_processes(1, database_url, env=env) as (url,):
        token = mint(keys["keyId"], keys["secret"], expires_in_s=3600)
        with Api(url, token) as api:
            api.create_machine("game", GAME)
            for n in range(args.instances):
                api.ok("POST", "/machines/game", {"slug": f"g{n}"})
        contexts = 1 if args.shared_auth else args.subscribers
        tokens = [mint(keys["keyId"], keys["secret"], act={"sub": f"player{n}"},
                       expires_in_s=3600) for n in range(contexts)]
        base = {"url": url, "token": token, "tokens": tokens, "instances": args.instances,
                "rate": args.rate, "seconds": args.seconds}
        quiet, quiet_cpu = run_phase(url, {**base, "subscribers": 0})
        with Steal() as steal:
            loud, loud_cpu = run_phase(url, {**base, "subscribers": args.subscribers})
        per_event = quiet_cpu / max(quiet["sent"], 1) * 1e3
        with_subscribers = loud_cpu / max(loud["sent"], 1) * 1e3
        per_frame = (loud_cpu - quiet_cpu * loud["sent"] / max(quiet["sent"], 1))
        per_frame = per_frame / max(loud["frames"], 1) * 1e3
        print(f"{label}: {args.subscribers} subscribers over {args.instances} instances "
              f"({contexts} auth context(s)), {args.rate:g} events/s for {args.seconds:g} s")
        print(f"  push latency p50 {loud['p50']:.1f} ms  p99 {loud['p99']:.1f} ms  "
              f"max {loud['max']:.1f} ms")
        print(f"  frames {loud['frames']} of {loud['expected']} expected; "
              f"{loud['disorder']} repeated or out of order; events answered {loud['sent']}")
        print(f"  server CPU {per_event:.2f} ms/event with nobody subscribed, "
              f"{with_subscribers:.2f} ms/event with the subscribers: "
              f"{per_frame:.3f} ms per delivered frame; generator "
              f"{loud['generator_cpu'] / max(loud['frames'], 1) * 1e3:.3f} ms/frame; {steal}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        config = json.loads(sys.stdin.readline())
        run = generate(config)
        uvloop.run(run) if uvloop else asyncio.run(run)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=cpus(),
                        help="server processes (default: one per CPU)")
    parser.add_argument("--shared-auth", action="store_true",
                        help="one auth context for every subscriber")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # a socket per subscriber
    print(f"backstate serve --workers {args.workers}; {cpus()} CPUs; load generator apart")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            bench(f"sqlite:///{tmp}/bench.db", "SQLite", args)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            bench(url, "PostgreSQL", args)


if __name__ == "__main__":
    main()
