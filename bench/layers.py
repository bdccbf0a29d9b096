"""Where an event's CPU goes, layer by layer, in one process: the same counter events measured
(1) as a step alone (`Runtime.send_batch`, no database) on one instance, whose VM keeps it
warm, then on 1,000 instances in turn, (2) with the database around it (`Runner.existing` on
one thread: the peek, the compare-and-set commit, its sync), (3) through the instance pipeline
(`Instances.send`: mailbox, lanes, step threads, group commit) from concurrent callers on the
server's own loop, with the event loop's own share, and (4) over HTTP from a load generator
process to the same server (fast path, auth, JSON). Each layer's CPU per event minus the one
inside it is what that layer adds; a sync's CPU is the kernel's, counted as the process's.

    python bench/layers.py [--events 3000] [--clients 16]

One process and one worker, so the figures add up; `http_events.py` measures the deployment
(a worker per CPU). CPU is this process's (all its threads); the load generator runs apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api import ids  # noqa: E402
from api.app import create_app  # noqa: E402
from api.bootstrap import init  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.tokens import mint  # noqa: E402
from bench.http_events import COUNTER  # noqa: E402
from runtime.results import Delivery  # noqa: E402
from runtime.store.leases import Target  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.server import run_server  # noqa: E402

INSTANCES = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/layers.db", secret="x" * 32)
        app = create_app(settings)
        made = init(settings, app.state.services.db)
        with run_server(app) as url:
            token = mint(made.key_id, made.secret, expires_in_s=3600)
            with Api(url, token) as api:
                api.create_machine("m", COUNTER)
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda i: api.ok("POST", "/machines/m", {"slug": f"i{i}"}),
                                  range(INSTANCES)))
            core = app.state.services.core
            loop = _server_loop(app)
            org_id = ids.decode("org", made.org_id)
            step = _step_alone(core, args.events, 1)
            cold = _step_alone(core, args.events, INSTANCES)
            runner = _runner(core, org_id, args.events)
            pipeline, on_loop = _pipeline(core, loop, org_id, args)
            http = _http(url, token, args)
    ms = 1e3
    rows = [
        ("step alone, one instance (warm VM)", step, ""),
        (f"step alone, {INSTANCES} instances in turn", cold, ""),
        ("+ the database, one caller (Runner)", runner,
         f"+{(runner - cold) * ms:.3f}: peek, commit, a sync each"),
        (f"instance pipeline, {args.clients} callers", pipeline,
         f"the event loop's share {on_loop * ms:.3f}: mailbox, lanes, thread handoffs"),
        (f"HTTP, {args.clients} connections", http,
         f"+{(http - pipeline) * ms:.3f}: HTTP, auth, the answer"),
    ]
    print("one process, SQLite synced; CPU per counter event:")
    for label, value, note in rows:
        print(f"  {label:40s} {value * ms:6.3f} ms" + (f"  ({note})" if note else ""))


def _server_loop(app: object) -> asyncio.AbstractEventLoop:
    """The loop uvicorn serves `app` on (in run_server's thread)."""
    core = app.state.services.core  # type: ignore[attr-defined]
    loop = core.scheduler._loop
    assert loop is not None, "the scheduler runs on the server's loop"
    return loop


def _step_alone(core: object, events: int, instances: int) -> float:
    """A counter event as the step thread runs it, without the database around it, to
    `instances` instances in turn (more than the warm VMs keep: restored from their JSON)."""
    from runtime.store.models import Instance
    runtime, versions = core._runtime, core._versions  # type: ignore[attr-defined]
    with core._db.read() as session:  # type: ignore[attr-defined]
        rows = session.query(Instance).order_by(Instance.slug).limit(instances).all()
        live = [[r.slug, versions.get(r.version_id), r.state_json, str(r.id), r.seq]
                for r in rows]
    delivery = [Delivery({"type": "inc"}, {})]
    cpu = time.process_time()
    for n in range(events):
        one = live[n % len(live)]
        slug, version, state_json, key, seq = one
        result = runtime.send_batch(version, instance_name=slug, state_json=state_json,
                                    deliveries=delivery, on_commit=lambda steps: None,
                                    instance_key=key, seq=seq)
        one[2], one[4] = result.final.state_json, seq + len(result.macrosteps)
    return (time.process_time() - cpu) / events


def _runner(core: object, org_id: object, events: int) -> float:
    """The step with the database around it, on this thread: no loop, no sharing of syncs."""
    import functools
    cpu = time.process_time()
    for n in range(events):
        body = functools.partial(core._events_body,  # type: ignore[attr-defined]
                                 (org_id, "m"), [Delivery({"type": "inc"}, {})])
        core._runner.existing(  # type: ignore[attr-defined]
            Target.named(org_id, "m", f"i{n % INSTANCES}"), body)  # type: ignore[arg-type]
    return (time.process_time() - cpu) / events


def _pipeline(core: object, loop: asyncio.AbstractEventLoop, org_id: object,
              args: argparse.Namespace) -> tuple[float, float]:
    """CPU per event through `Instances.send`, and the event loop thread's share of it."""
    async def callers() -> None:
        next_event = 0

        async def caller() -> None:
            nonlocal next_event
            while next_event < args.events:
                n, next_event = next_event, next_event + 1
                await core.send(org_id, "m", f"i{n % INSTANCES}",  # type: ignore[attr-defined]
                                {"type": "inc"}, auth_context={})

        await asyncio.gather(*(caller() for _ in range(args.clients)))

    async def loop_cpu() -> float:
        return time.thread_time()

    cpu = time.process_time()
    on_loop = asyncio.run_coroutine_threadsafe(loop_cpu(), loop).result()
    asyncio.run_coroutine_threadsafe(callers(), loop).result()
    on_loop = asyncio.run_coroutine_threadsafe(loop_cpu(), loop).result() - on_loop
    return (time.process_time() - cpu) / args.events, on_loop / args.events


def _http(url: str, token: str, args: argparse.Namespace) -> float:
    command = [sys.executable, str(REPO / "bench" / "http_events.py"), "--generate", url, token,
               "events", str(args.clients), str(args.events), "0"]
    cpu = time.process_time()
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    spent = time.process_time() - cpu
    result = json.loads(out.stdout)
    assert result["errors"] == 0, result
    return spent / result["events"]


if __name__ == "__main__":
    main()
