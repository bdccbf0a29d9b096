"""Timer benchmark: lateness of durable timers fired by a real `backstate serve` process.

For each rate asked for, arms `rate x spread` timers (over 200 instances) due evenly over
`spread` seconds, waits until all have fired, and prints the lateness — the commit time of the
transition each timer delivered minus the due time stored with it — as p50 / p99 / max, and the
server's CPU per timer while they fired (its idle polling included). The
figure to compare is the highest rate whose p99 lateness stays within 50 ms.

`--against DIR` runs the same rates, alternately, with the server of another checkout (the
machine's speed drifts: two versions are only comparable in the same phase).

    python bench/timers.py --rates 500,1000,2000,4000 [--spread 10] [--against ../baseline]

`--workers` defaults to one server process per CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.tokens import mint  # noqa: E402
from bench.machine import ChildrenCpu, Steal, cpus  # noqa: E402
from bench.profile import Profile  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.server import run_server_processes  # noqa: E402

TICKER = """
import { createMachine, assign, send, pure } from "npm:xstate";
export default createMachine({
  id: "ticker", predictableActionArguments: true, initial: "on", context: { ticks: 0 },
  states: { on: { on: {
    arm: { actions: pure((c, e) => e.timers.map((t) =>
      send({ type: "tick", id: t.id }, { delay: Math.max(0, t.at - Date.now()), id: t.id }))) },
    tick: { actions: assign({ ticks: (c) => c.ticks + 1 }) },
  } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rates", type=lambda v: [int(r) for r in v.split(",")],
                        default=[1000], help="timers due per second, one run each")
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the timers span")
    parser.add_argument("--workers", type=int, default=cpus(),
                        help="server processes (default: one per CPU)")
    parser.add_argument("--lead", type=float, default=20.0,
                        help="seconds from the start of arming to the first due time")
    parser.add_argument("--against", metavar="DIR", type=Path,
                        help="another checkout whose server runs alternately with this one's")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="sample the server with py-spy while timers fire (bench/profile.py)")
    args = parser.parse_args()
    sides = [("this", REPO)] + ([("against", args.against.resolve())] if args.against else [])
    best: dict[str, int] = {}
    for rate in args.rates:
        for label, repo in sides:
            p99 = run(args, repo, rate, label)
            if p99 is not None and p99 <= 50.0:
                best[label] = max(best.get(label, 0), rate)
    for label, _repo in sides:
        print(f"{label}: highest rate with p99 lateness <= 50 ms: "
              f"{best.get(label, 0)} timers/s (of {args.rates})")


def run(args: argparse.Namespace, repo: Path, rate: int, label: str) -> float | None:
    """One run at `rate` timers/s with the server of `repo`; its p99 lateness (ms)."""
    per_instance = max(1, round(rate * args.spread / args.instances))
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/timers.db"
        env = {"BACKSTATE_WORKERS": str(args.workers), "PYTHONPATH": str(repo)}
        out = subprocess.run([sys.executable, "-m", "api.cli", "init", "--json",
                              "--database-url", database_url], cwd=repo, check=True,
                             capture_output=True, text=True, env={**os.environ, **env})
        keys = json.loads(out.stdout)
        with run_server_processes(1, database_url, env=env, repo=repo) as (url,):
            token = mint(keys["keyId"], keys["secret"], expires_in_s=3600)
            with Api(url, token) as api:
                api.create_machine("ticker", TICKER)
                slugs = [f"t{i}" for i in range(args.instances)]
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda s: api.ok("POST", "/machines/ticker", {"slug": s}), slugs))
                total = args.instances * per_instance
                first_due = time.time() * 1000 + args.lead * 1000
                step = args.spread * 1000 / total

                def arm(index: int) -> None:
                    timers = [{"id": f"k{k}", "at": first_due + (k * args.instances + index) * step}
                              for k in range(per_instance)]
                    api.ok("POST", f"/machines/ticker/i/{slugs[index]}/events",
                           {"event": {"type": "arm", "timers": timers}})

                t0 = time.time()
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(arm, range(args.instances)))
                armed_s = time.time() - t0
                if time.time() * 1000 > first_due:
                    print(f"arming took {armed_s:.1f} s, past the first due time: raise --lead")
                    return None
                engine = create_engine(database_url)
                with engine.connect() as conn:
                    due = {(r[0], r[1]): r[2] for r in conn.execute(
                        text("SELECT instance_id, send_id, due_at_ms FROM timers"))}

                deadline = first_due / 1000 + args.spread + 120
                time.sleep(max(0.0, first_due / 1000 - time.time()))
                profile = (Profile(args.profile / f"{label}-{rate}") if args.profile
                           else contextlib.nullcontext())
                with Steal() as steal, ChildrenCpu() as server, profile:
                    while time.time() < deadline:
                        with engine.connect() as conn:
                            left = conn.execute(text("SELECT count(*) FROM timers")).scalar_one()
                        if left == 0:
                            break
                        time.sleep(0.5)
                with engine.connect() as conn:
                    fired = conn.execute(text(
                        "SELECT instance_id, event, created_at FROM transitions")).all()
                engine.dispose()
    lateness = []
    for instance_id, event, created_at in fired:
        event = json.loads(event) if isinstance(event, str) else event
        if event.get("type") != "tick":
            continue
        fired_ms = _epoch_ms(created_at)
        lateness.append(fired_ms - due[(instance_id, event["id"])])
    if not lateness:
        print(f"{label:8s} {rate:6d}/s: none of {len(due)} timers fired")
        return None
    p99 = percentile(lateness, 0.99)
    print(f"{label:8s} {rate:6d}/s: fired {len(lateness)} of {len(due)}; lateness p50 "
          f"{statistics.median(lateness):.1f} ms  p99 {p99:.1f} ms  max {max(lateness):.1f} ms; "
          f"server {server.seconds / len(lateness) * 1e3:.2f} ms CPU per timer ({steal})",
          flush=True)
    if isinstance(profile, Profile):
        print(profile.summary())
    return p99 if len(lateness) == len(due) else None


def _epoch_ms(value: object) -> float:
    from datetime import UTC, datetime
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp() * 1000


if __name__ == "__main__":
    main()
