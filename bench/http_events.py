"""HTTP benchmark: a real `backstate serve` under load from a separate generator process.

Scenarios (each on a fresh database, the server's default settings unless flags say otherwise):

* `events`: 1,000 instances of a counter machine, events spread over them, at each client count;
* `hot`: every event to one instance;
* `creates`: instances created as fast as the clients go;
* `big`: events to instances of a machine of 40 states (nested, parallel, guards), whose CPU
  per event is compared with `events`' counter.

Each line prints events/s, p50/p99 latency, and the server's CPU per event (the figure that
moves least with the machine's phase). Every acknowledged event is a committed transition
(synced to disk unless the server runs `BACKSTATE_DURABILITY=relaxed`).

`--against DIR` runs the same scenarios, alternating run by run, with the server of another
checkout (for example a `git worktree` of the commit before a change): the machine's speed
drifts, so two versions are only comparable measured in the same phase. Targets are ratios
between the two sides, printed at the end.

    python bench/http_events.py                          # SQLite (a temporary file)
    python bench/http_events.py --postgres URL           # PostgreSQL too
    python bench/http_events.py --against ../baseline    # and the baseline's server, alternately
    python bench/http_events.py --scenarios events,hot --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.tokens import mint  # noqa: E402
from bench.machine import ChildrenCpu, Steal, cpus  # noqa: E402
from bench.profile import Profile  # noqa: E402
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


def big_machine() -> str:
    """40 states: four regions of a parallel state, each a chain of nine (one nested), with
    guards and assigns on the way; `inc` moves every region one state on."""
    def region(r: int) -> str:
        states = []
        for s in range(9):
            target = f"s{(s + 1) % 9}"
            on = (f'inc: [{{ target: "{target}", cond: (c) => c.n % 7 !== {r}, '
                  f'actions: assign({{ n: (c) => c.n + 1 }}) }}, {{ target: "{target}" }}]')
            inner = ('initial: "a", states: { a: { on: { inc: "b" } }, b: {} },'
                     if s == 4 else "")
            states.append(f's{s}: {{ {inner} on: {{ {on} }} }}')
        return f'r{r}: {{ initial: "s0", states: {{ {", ".join(states)} }} }}'
    regions = ", ".join(region(r) for r in range(4))
    return ('import { createMachine, assign } from "npm:xstate";\n'
            'export default createMachine({ id: "big", predictableActionArguments: true,\n'
            '  type: "parallel", context: { n: 0 },\n'
            f'  states: {{ {regions} }} }});\n'
            "export const allowRead = () => true;\nexport const allowWrite = () => true;\n")


# scenario -> (machine, instances made beforehand, the request for the n-th event)
SCENARIOS = {
    "events": (COUNTER, 1000, lambda n, inst: (f"/machines/m/i/i{n % inst}/events",
                                                b'{"event":"inc"}')),
    "hot": (COUNTER, 1, lambda n, inst: ("/machines/m/i/i0/events", b'{"event":"inc"}')),
    "creates": (COUNTER, 0, lambda n, inst: ("/machines/m", b'{"slug":"c%d"}' % n)),
    "big": (big_machine(), 1000, lambda n, inst: (f"/machines/m/i/i{n % inst}/events",
                                                  b'{"event":"inc"}')),
}


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs and reads `Content-Length` answers.

    The load generator shares the server's cores, so it must cost little: httpx spent about 4 ms
    of CPU per request here, which capped the figures before the server did."""

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


async def generate(url: str, token: str, scenario: str, clients: int, events: int,
                   first: int) -> dict:
    """The load generator (run in its own process): `clients` concurrent senders."""
    _machine, instances, request = SCENARIOS[scenario]
    latencies: list[float] = []
    errors = 0
    next_event = first

    async def client(connection: Connection) -> None:
        nonlocal next_event, errors
        while next_event < first + events:
            n = next_event
            next_event += 1
            path, body = request(n, instances)
            t0 = time.perf_counter()
            status = await connection.post(path, body)
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


def run_generator(url: str, token: str, scenario: str, clients: int, events: int,
                  first: int) -> dict:
    command = [sys.executable, __file__, "--generate", url, token, scenario, str(clients),
               str(events), str(first)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{out.stderr}")
    result: dict = json.loads(out.stdout)
    return result


class Side:
    """One server under test: this checkout's, or another's (`--against`)."""

    def __init__(self, label: str, repo: Path, args: argparse.Namespace):
        self.label, self.repo, self.args = label, repo, args

    @contextmanager
    def server(self, database_url: str, scenario: str) -> Iterator[tuple[str, str]]:
        env = {"BACKSTATE_WORKERS": str(self.args.workers), "PYTHONPATH": str(self.repo)}
        keys = json.loads(subprocess.run(
            [sys.executable, "-m", "api.cli", "init", "--json", "--database-url", database_url],
            cwd=self.repo, env={**os.environ, **env}, check=True, capture_output=True,
            text=True).stdout)
        with run_server_processes(1, database_url, env=env, repo=self.repo) as (url,):
            token = mint(keys["keyId"], keys["secret"], expires_in_s=3600)
            machine, instances, _request = SCENARIOS[scenario]
            with Api(url, token) as api:
                api.create_machine("m", machine)
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda i: api.ok("POST", "/machines/m", {"slug": f"i{i}"}),
                                  range(instances)))
            yield url, token


def measure(side: Side, database: str, scenario: str, clients: int) -> dict:
    with fresh_database(database) as url, side.server(url, scenario) as (base, token):
        count = side.args.events if clients > 1 else max(200, side.args.events // 4)
        profile = (Profile(side.args.profile / f"{side.label}-{database[:10]}-{scenario}-{clients}")
                   if side.args.profile else contextlib.nullcontext())
        with Steal() as steal, ChildrenCpu() as server, profile:
            r = run_generator(base, token, scenario, clients, count, first=0)
        if isinstance(profile, Profile):
            print(profile.summary(), flush=True)
    r["cpu_ms"] = server.seconds / r["events"] * 1e3
    r["steal"] = str(steal)
    return r


@contextmanager
def fresh_database(database: str) -> Iterator[str]:
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
    else:
        with postgres_schema(database) as url:
            yield url


def line(side: str, database: str, scenario: str, clients: int, r: dict) -> str:
    db = "SQLite" if database == "sqlite" else "PostgreSQL"
    return (f"{side:9s} {db:10s} {scenario:7s} {clients:3d} clients: "
            f"{r['events'] / r['elapsed']:7.0f}/s  p50 {r['p50'] * 1e3:6.1f} ms  "
            f"p99 {r['p99'] * 1e3:6.1f} ms  server {r['cpu_ms']:.2f} ms CPU each  "
            f"({r['errors']} errors, generator {r['client_cpu'] * 1e3:.2f} ms; {r['steal']})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        url, token, scenario, clients, events, first = sys.argv[2:8]
        run = generate(url, token, scenario, int(clients), int(events), int(first))
        print(json.dumps(uvloop.run(run) if uvloop else asyncio.run(run)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--skip-sqlite", action="store_true", help="only run on PostgreSQL")
    parser.add_argument("--against", metavar="DIR", type=Path,
                        help="another checkout whose server runs alternately with this one's")
    parser.add_argument("--scenarios", default="events,hot,creates,big",
                        type=lambda v: v.split(","), help="default: events,hot,creates,big")
    parser.add_argument("--events", type=int, default=3000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=1, help="alternations per scenario")
    parser.add_argument("--workers", type=int, default=cpus(),
                        help="server processes (default: one per CPU)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="sample the server with py-spy during each run (bench/profile.py)")
    parser.add_argument("--clients", type=lambda v: [int(c) for c in v.split(",")],
                        default=[1, 16, 64], help="concurrent clients per run (default 1,16,64)")
    args = parser.parse_args()
    sides = [Side("this", REPO, args)]
    if args.against:
        sides.append(Side("against", args.against.resolve(), args))
    databases = ([] if args.skip_sqlite else ["sqlite"]) + ([args.postgres] if args.postgres
                                                             else [])
    print(f"backstate serve --workers {args.workers}; {cpus()} CPUs; load generator apart")
    results: dict[tuple[str, str, str, int], list[dict]] = {}
    for database in databases:
        for scenario in args.scenarios:
            for clients in args.clients if scenario != "hot" else [16]:
                for _ in range(args.rounds):
                    for side in sides:
                        r = measure(side, database, scenario, clients)
                        results.setdefault((side.label, database, scenario, clients), []).append(r)
                        print(line(side.label, database, scenario, clients, r), flush=True)
    summarize(results, sides, databases, args)


def summarize(results: dict, sides: list[Side], databases: list[str],
              args: argparse.Namespace) -> None:
    def rate(label: str, database: str, scenario: str, clients: int) -> float | None:
        runs = results.get((label, database, scenario, clients))
        return statistics.median(r["events"] / r["elapsed"] for r in runs) if runs else None

    def cpu(label: str, database: str, scenario: str, clients: int) -> float | None:
        runs = results.get((label, database, scenario, clients))
        return statistics.median(r["cpu_ms"] for r in runs) if runs else None

    print("\nmedians (this / against):")
    for database in databases:
        for scenario in args.scenarios:
            for clients in args.clients if scenario != "hot" else [16]:
                mine, theirs = (rate(s.label, database, scenario, clients) for s in
                                (sides[0], sides[-1]))
                cpu_mine, cpu_theirs = (cpu(s.label, database, scenario, clients) for s in
                                        (sides[0], sides[-1]))
                if mine is None:
                    continue
                ratio = f"  x{mine / theirs:.2f} rate, x{cpu_mine / cpu_theirs:.2f} CPU" if (
                    len(sides) > 1 and theirs and cpu_theirs and cpu_mine) else ""
                print(f"  {database[:10]:10s} {scenario:7s} {clients:3d} clients: "
                      f"{mine:7.0f}/s, {cpu_mine:.2f} ms CPU{ratio}")
    for database in databases:
        big, small = cpu("this", database, "big", 16), cpu("this", database, "events", 16)
        if big and small:
            print(f"  {database[:10]}: a 40-state machine costs x{big / small:.2f} the counter "
                  "per event (16 clients)")


if __name__ == "__main__":
    main()
