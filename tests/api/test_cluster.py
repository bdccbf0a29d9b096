"""A cluster: three `backstate serve` nodes (separate processes and ports, no shared files) on
one PostgreSQL, a load of events and timers spread over all of them, one node killed with
SIGKILL in the middle.

* every acknowledged event appears exactly once in its instance's history, whichever node took
  it (instances are serialized across nodes by their leases);
* every timer armed by an acknowledged event fires exactly once (claims keep the nodes apart,
  and the delivery's commit is fenced by the timer row);
* what the dead node held is taken over: the leases of the steps it was running expire and
  their instances go on elsewhere (the services it cut off get their error.platform event),
  and the timers it had claimed are delivered by another node once their claims expire;
* the survivors' latency during the takeover is printed (`-s` shows it).

Leases and claims are short here (`BACKSTATE_LEASE_TTL_S`, `BACKSTATE_TIMER_CLAIM_S`) so the
takeover is quick; nothing waits for a fixed time: every wait is for a condition, with a
generous deadline.
"""

from __future__ import annotations

import collections
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from api.bootstrap import init, open_database
from api.settings import Settings
from tests.support.client import Admin, Api
from tests.support.databases import postgres_schema, postgres_url
from tests.support.server import REPO, _wait_healthy, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "cluster-test-secret"
LEASE_TTL_S = 3
CLAIM_S = 2
DEADLINE_S = 120   # for conditions: generous, the machine may be slow and shared

CLUSTERED = """
import { createMachine, assign, send, pure } from "npm:xstate";
export default createMachine({
  id: "clustered", predictableActionArguments: true, initial: "live",
  context: { count: 0, ticks: 0 },
  states: {
    live: { on: {
      inc: { actions: assign({ count: (c) => c.count + 1 }) },
      arm: { actions: pure((c, e) =>
        send({ type: "tick", id: e.id }, { delay: e.delay, id: e.id })) },
      tick: { actions: assign({ ticks: (c) => c.ticks + 1 }) },
      hang: "waiting",
    } },
    waiting: {
      invoke: { src: () => fetch(HANG_URL).then((r) => r.text()), onDone: "live",
                onError: "failed" },
      on: { tick: { actions: assign({ ticks: (c) => c.ticks + 1 }) } },
    },
    failed: { on: {
      poke: "live",
      tick: { actions: assign({ ticks: (c) => c.ticks + 1 }) },
    } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


@pytest.fixture
def database() -> Iterator[str]:
    base = postgres_url()
    if base is None:
        pytest.skip("a cluster needs PostgreSQL (BACKSTATE_TEST_POSTGRES_URL)")
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A loopback server that answers only at the end of the test: a step waiting on it holds
    its instance's lease until its node dies."""
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            done.wait(DEADLINE_S)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hang"
    done.set()
    server.shutdown()
    server.server_close()


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def start_node(database: str) -> Node:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "BACKSTATE_SECRET": SECRET,
           "BACKSTATE_WORKERS": "1", "BACKSTATE_FETCH_ALLOW_LOOPBACK": "true",
           "BACKSTATE_LEASE_TTL_S": str(LEASE_TTL_S), "BACKSTATE_TIMER_CLAIM_S": str(CLAIM_S),
           "BACKSTATE_TIMER_POLL_S": "0.1", "BACKSTATE_LEASE_WAIT_S": str(DEADLINE_S)}
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--database-url",
         database, "--log-level", "warning"], cwd=REPO, env=env)
    return Node(process, f"http://127.0.0.1:{port}")


@pytest.fixture
def nodes(database: str) -> Iterator[list[Node]]:
    started = [start_node(database) for _ in range(3)]
    try:
        for node in started:
            _wait_healthy(node.url, node.process)
        yield started
    finally:
        for node in started:
            if node.alive:
                node.process.terminate()
        for node in started:
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass
class Load:
    """What the clients were told: acknowledged events by instance, and latencies."""
    incs: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    timers: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    latencies: list[tuple[float, float, int]] = field(default_factory=list)  # (at, s, node)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> tuple[int, int]:
        with self.lock:
            return sum(map(len, self.incs.values())), sum(map(len, self.timers.values()))


def send(node: Node, keys: Admin, slug: str, event: dict[str, Any]) -> bool:
    try:
        with Api.for_key(node.url, keys.key_id, keys.secret) as api:
            return api.request("POST", f"/machines/clustered/i/{slug}/events",
                               {"event": event}).status_code == 200
    except httpx.HTTPError:
        return False


def transitions(api: Api, slug: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.ok("GET", f"/machines/clustered/i/{slug}/events"
                      + (f"?cursor={cursor}" if cursor else ""))
        out += page["transitions"]
        if not page.get("cursor"):
            return out
        cursor = page["cursor"]


def held_by(database: str, pid: int) -> tuple[int, int]:
    """Leases and live timer claims held by the node whose process is `pid` (owners are
    `host:pid:random`)."""
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            now = int(time.time() * 1000)
            pattern = {"owner": f"%:{pid}:%", "now": now}
            leases = conn.execute(text(
                "SELECT count(*) FROM instances WHERE lease_owner LIKE :owner "
                "AND lease_expires_at > :now"), pattern).scalar_one()
            claims = conn.execute(text(
                "SELECT count(*) FROM timers WHERE claimed_by LIKE :owner "
                "AND claim_expires_at > :now"), pattern).scalar_one()
            return int(leases), int(claims)
    finally:
        engine.dispose()


def timers_left(database: str) -> int:
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM timers")).scalar_one())
    finally:
        engine.dispose()


def test_three_nodes_one_killed_mid_load_lose_nothing_and_deliver_every_timer_once(
        database: str, nodes: list[Node], hanging_url: str) -> None:
    settings = Settings(database_url=database, secret=SECRET)
    db = open_database(settings)
    try:
        made = init(settings, db)
    finally:
        db.dispose()
    keys = Admin(made.org_id, made.key_id, made.secret)
    victim, survivors = nodes[0], nodes[1:]
    api = Api.for_key(survivors[0].url, keys.key_id, keys.secret)
    api.create_machine("clustered", CLUSTERED.replace("HANG_URL", json.dumps(hanging_url)))
    busy = [f"c{i}" for i in range(8)]      # events from every node, timers of 0.3 to 2 s
    stuck = ["h0", "h1"]                    # held by the victim's hanging steps, timers due
    for slug in busy + stuck:
        api.create_instance("clustered", slug)
    load = Load()
    # Timers armed (through every node) on the stuck instances, due while the victim holds
    # them: a node that claims one waits in line for the lease until the victim is gone.
    for n, slug in enumerate(stuck * 3):
        eid = f"s{n}"
        assert send(nodes[n % 3], keys, slug, {"type": "arm", "id": eid, "delay": 400})
        load.timers[slug].append(eid)
    hangers = [threading.Thread(target=send, args=(victim, keys, slug, {"type": "hang"}),
                                daemon=True) for slug in stuck]
    for hanger in hangers:
        hanger.start()
    wait_for(lambda: held_by(database, victim.process.pid)[0] == len(stuck),
             "the victim holding the stuck instances' leases")

    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            slug = busy[(worker * 3 + n) % len(busy)]
            node = nodes[(worker + n) % 3]
            if not node.alive:
                node = survivors[n % 2]
            eid = f"w{worker}-{n}"
            event = ({"type": "arm", "id": eid, "delay": 300 + (n % 7) * 250} if n % 3 == 0
                     else {"type": "inc", "id": eid})
            started = time.monotonic()
            ok = send(node, keys, slug, event)
            with load.lock:
                load.latencies.append((started, time.monotonic() - started, nodes.index(node)))
                if ok:
                    (load.timers if event["type"] == "arm" else load.incs)[slug].append(eid)

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client, w) for w in range(6)]
        wait_for(lambda: load.acknowledged()[0] >= 40 and load.acknowledged()[1] >= 12,
                 "the load to get going")
        # Kill it while it holds the stuck leases and a claim on at least one timer.
        wait_for(lambda: held_by(database, victim.process.pid)[1] >= 1,
                 "the victim holding a timer claim")
        leases, claims = held_by(database, victim.process.pid)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        killed_at = time.monotonic()
        before_kill = load.acknowledged()
        # The load goes on against the survivors through the takeover.
        wait_for(lambda: load.acknowledged()[0] >= before_kill[0] + 40, "load after the kill")
        stop.set()
        for future in futures:
            future.result()

    def every_timer_fired() -> bool:
        histories = {slug: transitions(api, slug) for slug in busy + stuck}
        fired = {e["event"].get("id") for h in histories.values() for e in h
                 if e["event"]["type"] == "tick"}
        return all(t in fired for ts in load.timers.values() for t in ts)

    wait_for(every_timer_fired, "every acknowledged timer to fire")
    stuck_fired_at = time.monotonic()
    # Once the timer table is empty nothing can fire again: exactly-once is then final.
    wait_for(lambda: timers_left(database) == 0, "no timer left to deliver")

    for slug in busy + stuck:
        history = transitions(api, slug)
        ids = collections.Counter(e["event"].get("id") for e in history
                                  if e["event"]["type"] in ("inc", "tick"))
        assert all(ids[e] == 1 for e in load.incs[slug]), \
            f"{slug}: an acknowledged event is missing or doubled"
        assert all(ids[t] == 1 for t in load.timers[slug]), f"{slug}: a timer fired not once"
        assert max(ids.values(), default=1) == 1, f"{slug}: something was applied twice"
        context = api.ok("GET", f"/machines/clustered/i/{slug}/admin")["context"]
        assert context["count"] == sum(1 for e in history if e["event"]["type"] == "inc")
        assert context["ticks"] == sum(1 for e in history if e["event"]["type"] == "tick")
    # The victim's hanging steps died with it: another node took their instances, and the
    # services it cut off failed there first.
    for slug in stuck:
        assert api.ok("POST", f"/machines/clustered/i/{slug}/events",
                      {"event": "poke"})["state"] == "live"
        types = [e["event"]["type"] for e in transitions(api, slug)]
        assert types[-1] == "poke"
        assert any(t.startswith("error.platform.clustered.waiting") for t in types)
    api.close()

    during = [s for at, s, node in load.latencies if at >= killed_at and node != 0]
    before = [s for at, s, node in load.latencies if at < killed_at and node != 0]
    print(f"\ncluster: victim held {leases} lease(s) and {claims} claim(s) at the kill; "
          f"{sum(before_kill)} events acknowledged before it, "
          f"{sum(load.acknowledged()) - sum(before_kill)} after; every timer fired "
          f"{stuck_fired_at - killed_at:.1f} s after the kill (lease {LEASE_TTL_S} s, "
          f"claim {CLAIM_S} s); survivors' p50/p99 before {percentile(before, 50):.0f}/"
          f"{percentile(before, 99):.0f} ms, during the takeover {percentile(during, 50):.0f}/"
          f"{percentile(during, 99):.0f} ms")


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100)[p - 1] * 1000


def test_subscribers_on_every_node_see_every_state_in_order(
        database: str, nodes: list[Node]) -> None:
    from backstate_client import Client, sign_token

    settings = Settings(database_url=database, secret=SECRET)
    db = open_database(settings)
    try:
        made = init(settings, db)
    finally:
        db.dispose()
    token = sign_token(made.key_id, made.secret, {}, expires_in="1h")
    writer = Client(token, api_host=nodes[0].url)
    writer.machines.create("clustered")
    writer.machine_versions.create("clustered", CLUSTERED.replace("HANG_URL", '"http://x"'),
                                   make_current=True)
    writer.machine_instances.create("clustered", "watched")
    watchers = [Client(token, api_host=node.url) for node in nodes[1:]]
    subscriptions = [w.machine_instances.subscribe("clustered", "watched") for w in watchers]
    try:
        for subscription in subscriptions:
            subscription.get(timeout=30)   # the current state first
        sent = [writer.machine_instances.send_event("clustered", "watched", "inc")
                for _ in range(5)]
        for subscription in subscriptions:   # updates made on node 0, seen on 1 and 2
            assert [subscription.get(timeout=30) for _ in sent] == sent
    finally:
        for subscription in subscriptions:
            subscription.close()
        for client in [writer, *watchers]:
            client.close()
