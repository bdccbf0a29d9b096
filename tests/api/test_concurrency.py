"""Per-instance serialization across server processes sharing one database."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from api.bootstrap import init, open_database
from api.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.bundles import COUNTER
from tests.support.client import Api
from tests.support.server import run_server_processes

EVENTS = 50
CLIENTS = 10


@pytest.mark.slow
@pytest.mark.parametrize(
    ("servers", "workers"),
    [pytest.param(2, 1, id="two-servers"), pytest.param(1, 2, id="one-server-two-workers")],
)
def test_concurrent_increments_through_two_processes_all_apply_once(
    database_url: str, servers: int, workers: int
) -> None:
    settings = Settings(database_url=database_url, secret=TEST_SECRET)
    db = open_database(settings)
    admin = init(settings, db)
    db.dispose()
    env = {"BACKSTATE_SECRET": TEST_SECRET, "BACKSTATE_WORKERS": str(workers)}
    with ExitStack() as stack:
        urls = stack.enter_context(run_server_processes(servers, database_url, env=env))
        clients = [
            stack.enter_context(Api.for_key(urls[n % servers], admin.key_id, admin.secret))
            for n in range(CLIENTS)
        ]
        clients[0].create_machine("counter", COUNTER)
        clients[1].create_instance("counter", "shared")

        def increment(n: int) -> tuple[int, int]:
            response = clients[n % CLIENTS].send("counter", "shared", "inc")
            assert response.status_code == 200, response.text
            state = response.json()
            return state["publicContext"]["count"], state["ts"]

        with ThreadPoolExecutor(CLIENTS) as pool:
            started = time.monotonic()
            results = list(pool.map(increment, range(EVENTS)))
            print(f"{EVENTS} events in {time.monotonic() - started:.2f}s")

        # every acknowledged event saw a distinct count: one at a time, none lost
        assert sorted(count for count, _ in results) == list(range(1, EVENTS + 1))
        by_count = sorted(results)
        assert all(a[1] < b[1] for a, b in itertools.pairwise(by_count))

        for url in urls:
            with Api.for_key(url, admin.key_id, admin.secret) as reader:
                admin_state = reader.ok("GET", "/machines/counter/i/shared/admin")
                assert admin_state["context"]["count"] == EVENTS
                events = reader.ok("GET", "/machines/counter/i/shared/events")["transitions"]
                assert [t["event"]["type"] for t in events] == ["xstate.init"] + ["inc"] * EVENTS
