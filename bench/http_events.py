"""HTTP benchmark: `POST /machines/{m}/i/{i}/events` against a real `backstate serve` process.

Creates 1,000 instances of a counter machine, then sends events to them at 1, 16 and 64
concurrent clients from a separate load-generator process (so the client does not share the
server's interpreter), and prints events/s and p50/p99 latency. Every acknowledged event is a
durably committed transition (SQLite in WAL mode, or PostgreSQL).

Targets (issue #3): >= 500 events/s on SQLite and p99 <= 50 ms at 16 clients.

    python bench/http_events.py                  # SQLite (a temporary file)
    python bench/http_events.py --postgres URL   # PostgreSQL (e.g. scripts/start-postgres.sh)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.tokens import mint  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.databases import postgres_schema  # noqa: E402
from tests.support.server import run_server_processes  # noqa: E402

COUNTER = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "counter", predictableActionArguments: true, initial: "counting",
  context: { count: 0, public: { count: 0 } },
  states: { counting: { on: { inc: { actions: assign((c) => ({
    count: c.count + 1,
    public: { count: c.count + 1 },
  })) } } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def admin_key(database_url: str) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "api.cli", "init", "--json", "--database-url",
                          database_url], cwd=REPO, check=True, capture_output=True, text=True)
    keys: dict[str, str] = json.loads(out.stdout)
    return keys


def prepare(url: str, token: str, instances: int) -> None:
    with Api(url, token) as api:
        api.create_machine("counter", COUNTER)

        def create(i: int) -> None:
            api.ok("POST", "/machines/counter", {"slug": f"i{i}"})

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(instances)))


async def generate(url: str, token: str, clients: int, events: int, instances: int) -> dict:
    """The load generator (run in its own process): `clients` concurrent senders."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    latencies: list[float] = []
    errors = 0
    next_event = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_event, errors
        while next_event < events:
            n = next_event
            next_event += 1
            t0 = time.perf_counter()
            response = await http.post(f"/machines/counter/i/i{n % instances}/events",
                                       content='{"event":"inc"}')
            latencies.append(time.perf_counter() - t0)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=120) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"events": len(latencies), "errors": errors, "elapsed": elapsed,
            "p50": statistics.median(latencies),
            "p99": sorted(latencies)[int(0.99 * len(latencies))]}


def run_generator(url: str, token: str, clients: int, events: int, instances: int) -> dict:
    command = [sys.executable, __file__, "--generate", url, token, str(clients), str(events),
               str(instances)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict = json.loads(out.stdout)
    return result


def bench(database_url: str, label: str, instances: int, events: int) -> None:
    keys = admin_key(database_url)
    with run_server_processes(1, database_url) as (url,):
        token = mint(keys["keyId"], keys["secret"], expires_in_s=3600)
        t0 = time.perf_counter()
        prepare(url, token, instances)
        print(f"{label}: created {instances} instances in {time.perf_counter() - t0:.1f} s")
        for clients in (1, 16, 64):
            count = events if clients > 1 else max(200, events // 4)
            r = run_generator(url, token, clients, count, instances)
            print(f"{label:10s} {clients:3d} clients: {r['events'] / r['elapsed']:7.0f} events/s  "
                  f"p50 {r['p50'] * 1e3:6.1f} ms  p99 {r['p99'] * 1e3:6.1f} ms  "
                  f"({r['events']} events, {r['errors']} errors)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        url, token, clients, events, instances = sys.argv[2:7]
        print(json.dumps(asyncio.run(generate(url, token, int(clients), int(events),
                                              int(instances)))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", "SQLite", args.instances, args.events)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            bench(url, "PostgreSQL", args.instances, args.events)


if __name__ == "__main__":
    main()
