"""Cluster benchmark: N `backstate serve` nodes on one PostgreSQL, a load generator per node.

How far one PostgreSQL goes is a question of what it spends per event: this prints the
cluster's events/s and latency, the nodes' CPU per event, PostgreSQL's own CPU per event (all
its processes, read from /proc: run it on the database's machine) and the group commits per
event (the nodes' `/metrics`). On one small machine the nodes, the database and the generators
share the cores, so events/s is the machine's figure; PostgreSQL's CPU per event says how many
events its cores could take.

    python bench/cluster.py --postgres URL                        # 2 nodes, 1 worker each
    python bench/cluster.py --postgres URL --nodes 3 --workers 2 --clients 32
    python bench/cluster.py --postgres URL --scenario hot         # one instance, every node
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.tokens import mint  # noqa: E402
from bench.http_events import SCENARIOS, run_generator  # noqa: E402
from bench.machine import ChildrenCpu, Steal  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.databases import postgres_schema  # noqa: E402
from tests.support.metrics import scrape  # noqa: E402
from tests.support.server import run_server_processes  # noqa: E402


def postgres_cpu_s() -> float:
    """CPU time (user + system) of every PostgreSQL process alive now (Linux)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)
            if not fields[0].endswith("(postgres"):
                continue
            values = fields[1].split()
            total += int(values[11]) + int(values[12])   # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per node")
    parser.add_argument("--clients", type=int, default=16, help="in all, split over the nodes")
    parser.add_argument("--events", type=int, default=3000, help="in all")
    parser.add_argument("--scenario", default="events", choices=["events", "hot"])
    parser.add_argument("--durability", default="sync", choices=["sync", "relaxed"])
    args = parser.parse_args()
    machine, instances, _ = SCENARIOS[args.scenario]
    env = {"BACKSTATE_WORKERS": str(args.workers), "BACKSTATE_DURABILITY": args.durability}
    with postgres_schema(args.postgres) as url:
        keys = json.loads(subprocess.run(
            [sys.executable, "-m", "api.cli", "init", "--json", "--database-url", url],
            cwd=REPO, env={**os.environ, **env}, check=True, capture_output=True,
            text=True).stdout)
        token = mint(keys["keyId"], keys["secret"], expires_in_s=3600)
        with run_server_processes(args.nodes, url, env=env) as urls:
            with Api(urls[0], token) as api:
                api.create_machine("m", machine)
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda i: api.ok("POST", "/machines/m", {"slug": f"i{i}"}),
                                  range(instances)))
            before = [scrape(node) for node in urls]
            share = args.events // args.nodes
            clients = max(1, args.clients // args.nodes)
            pg_started = postgres_cpu_s()
            with Steal() as steal, ChildrenCpu() as nodes_cpu, ThreadPoolExecutor(
                    args.nodes) as pool:
                started = time.perf_counter()
                runs = list(pool.map(
                    lambda n: run_generator(urls[n], token, args.scenario, clients, share,
                                            first=n * share), range(args.nodes)))
                elapsed = time.perf_counter() - started
            pg_s = postgres_cpu_s() - pg_started
            after = [scrape(node) for node in urls]
    events = sum(r["events"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    commits = sum(a.value("backstate_commits_total") - b.value("backstate_commits_total")
                  for a, b in zip(after, before, strict=True))
    p50 = max(r["p50"] for r in runs) * 1e3
    p99 = max(r["p99"] for r in runs) * 1e3
    print(f"{args.nodes} nodes x {args.workers} worker(s), {args.scenario}, {args.clients} "
          f"clients, durability {args.durability}: {events / elapsed:.0f} events/s, p50 "
          f"{p50:.1f} ms, p99 {p99:.1f} ms (worst node), {errors} errors; nodes "
          f"{nodes_cpu.seconds / events * 1e3:.2f} ms CPU/event, PostgreSQL "
          f"{pg_s / events * 1e3:.2f} ms CPU/event, {commits / events:.2f} group commits/event;"
          f" {steal}")


if __name__ == "__main__":
    main()
