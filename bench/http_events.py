"""HTTP benchmark: `POST /machines/{m}/i/{i}/events` against a real `backstate serve` process.

Creates 1,000 instances of a counter machine, then sends events to them at 1, 16 and 64
concurrent clients from a separate load-generator process (so the client does not share the
server's interpreter), and prints events/s and p50/p99 latency. Every acknowledged event is a
durably committed transition (SQLite in WAL mode, or PostgreSQL).

Targets (issue #3): >= 500 events/s on SQLite and p99 <= 50 ms at 16 clients.

    python bench/http_events.py                  # SQLite (a temporary file)
    python bench/http_events.py --postgres URL   # PostgreSQL (e.g. scripts/start-postgres.sh)
    python bench/http_events.py --workers 1      # server processes (default: one per CPU)
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
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.tokens import mint  # noqa: E402
from bench.machine import ChildrenCpu, Steal, cpus  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.databases import postgres_schema  # noqa: E402
from tests.support.server import run_server_processes  # noqa: E402

try:
    import uvloop  # the server's loop too (uvicorn[standard]); cheaper for the generator
except ImportError:
    uvloop = None

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


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs and reads `Content-Length` answers.

    The load generator shares the server's cores, so it must cost little: httpx spent about 4 ms
    of CPU per request here, which capped the figures at ~250 events/s before the server did."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes):
        self._reader, self._writer, self._head = reader, writer, head

    @classmethod
    async def open(cls, url: str, token: str) -> Connection:
        parsed = urlsplit(url)
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        head = (f"Host: {parsed.netloc}\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\n").encode()
        return cls(reader, writer, head)

    async def post(self, path: str, body: bytes) -> int:
        """POST `body` to `path`; the response's status (its body is read and dropped)."""
        self._writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self._head
                           + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = _content_length(head)
        await self._reader.readexactly(length)
        return int(head[9:12])

    def close(self) -> None:
        self._writer.close()


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line[15:])
    raise ValueError(f"response without Content-Length: {head!r}")


async def generate(url: str, token: str, clients: int, events: int, instances: int) -> dict:
    """The load generator (run in its own process): `clients` concurrent senders."""
    latencies: list[float] = []
    errors = 0
    next_event = 0
    body = b'{"event":"inc"}'

    async def client(connection: Connection) -> None:
        nonlocal next_event, errors
        while next_event < events:
            n = next_event
            next_event += 1
            t0 = time.perf_counter()
            status = await connection.post(f"/machines/counter/i/i{n % instances}/events", body)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    connections = [await Connection.open(url, token) for _ in range(clients)]
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return {"events": len(latencies), "errors": errors, "elapsed": elapsed,
            "client_cpu": (time.process_time() - cpu) / len(latencies),
            "p50": statistics.median(latencies),
            "p99": sorted(latencies)[int(0.99 * len(latencies))]}


def run_generator(url: str, token: str, clients: int, events: int, instances: int) -> dict:
    command = [sys.executable, __file__, "--generate", url, token, str(clients), str(events),
               str(instances)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{out.stderr}")
    result: dict = json.loads(out.stdout)
    return result


def bench(database_url: str, label: str, args: argparse.Namespace) -> None:
    instances, events, workers = args.instances, args.events, args.workers
    keys = admin_key(database_url)
    env = {"BACKSTATE_WORKERS": str(workers)}
    with run_server_processes(1, database_url, env=env) as (url,):
        token = mint(keys["keyId"], keys["secret"], expires_in_s=3600)
        t0 = time.perf_counter()
        prepare(url, token, instances)
        print(f"{label}: created {instances} instances in {time.perf_counter() - t0:.1f} s")
        for clients in args.clients:
            count = events if clients > 1 else max(200, events // 4)
            with Steal() as steal, ChildrenCpu() as server:
                r = run_generator(url, token, clients, count, instances)
            print(f"{label:10s} {clients:3d} clients: {r['events'] / r['elapsed']:7.0f} events/s  "
                  f"p50 {r['p50'] * 1e3:6.1f} ms  p99 {r['p99'] * 1e3:6.1f} ms  "
                  f"({r['events']} events, {r['errors']} errors; "
                  f"server {server.seconds / r['events'] * 1e3:.2f} ms CPU/event, "
                  f"generator {r['client_cpu'] * 1e3:.2f}; {steal})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        url, token, clients, events, instances = sys.argv[2:7]
        run = generate(url, token, int(clients), int(events), int(instances))
        print(json.dumps(uvloop.run(run) if uvloop else asyncio.run(run)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=cpus(),
                        help="server processes (default: one per CPU)")
    parser.add_argument("--clients", type=lambda v: [int(c) for c in v.split(",")],
                        default=[1, 16, 64], help="concurrent clients per run (default 1,16,64)")
    parser.add_argument("--skip-sqlite", action="store_true", help="only run on PostgreSQL")
    args = parser.parse_args()
    print(f"backstate serve --workers {args.workers}; {cpus()} CPUs; load generator apart")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            bench(url, "SQLite", args)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            bench(url, "PostgreSQL", args)


if __name__ == "__main__":
    main()
