"""Operating a server: `/metrics` after a known load, `/healthz` and `/readyz`, request ids,
JSON logs, and a database outage (the network to PostgreSQL cut, then restored)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api import ids
from api.app import create_app
from api.bootstrap import init, open_database
from api.logs import JsonFormatter
from api.settings import Settings
from api.tokens import mint
from runtime import logcontext
from runtime.engine import Runtime
from tests.api.test_workers import wait_until as wait_for_process
from tests.api.test_workers import workers
from tests.conftest import TEST_SECRET, Server
from tests.support.bundles import COUNTER
from tests.support.client import Api, assert_error
from tests.support.databases import postgres_schema, postgres_url
from tests.support.metrics import Scrape, scrape
from tests.support.proxy import cuttable
from tests.support.realtime import Realtime
from tests.support.server import REPO, _wait_healthy, free_port, run_server

RINGER = """
import { createMachine } from "npm:xstate";
export default createMachine({
  id: "ringer", predictableActionArguments: true, initial: "idle",
  states: { idle: { on: { start: "waiting" } }, waiting: { after: { 50: "rang" } }, rang: {} },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, labels) - before.value(name, labels)


def test_metrics_count_a_known_load(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_machine("ringer", RINGER)
    before = scrape(server.url)
    for slug in ("a", "b", "c"):
        api.create_instance("counter", slug)
    for n in range(7):
        assert api.send("counter", "abc"[n % 3], {"type": "inc"}).status_code == 200
    for _ in range(2):   # a machine error and an unknown instance: failed events
        assert_error(api.send("counter", "a", {"type": "boom"}), 400)
    assert_error(api.send("counter", "nope", {"type": "inc"}), 404, "not-found")
    api.create_instance("ringer", "r")
    assert api.send("ringer", "r", {"type": "start"}).status_code == 200
    wait_for(lambda: api.ok("GET", "/machines/ringer/i/r")["state"] == "rang", "the timer")
    wait_for(lambda: delta(scrape(server.url), before, "backstate_timers_delivered_total") >= 1,
             "the delivery counted")
    after = scrape(server.url)

    assert delta(after, before, "backstate_instances_created_total") == 4
    assert delta(after, before, "backstate_events_total", outcome="ok") == 8
    assert delta(after, before, "backstate_events_total", outcome="error") == 3
    assert delta(after, before, "backstate_event_seconds_count") == 11
    assert delta(after, before, "backstate_event_seconds_sum") > 0
    # Every event's histogram buckets add up: the +Inf bucket counts each one.
    assert delta(after, before, "backstate_event_seconds_bucket", le="+Inf") == 11
    assert delta(after, before, "backstate_errors_total", status="400",
                 code="machine-error") == 2
    assert delta(after, before, "backstate_errors_total", status="404", code="not-found") == 1
    assert delta(after, before, "backstate_timers_claimed_total") == 1
    assert delta(after, before, "backstate_timers_delivered_total") == 1
    assert delta(after, before, "backstate_timer_lateness_seconds_count") == 1
    assert delta(after, before, "backstate_timers_retried_total") == 0
    # 4 creations, 8 events and a timer each ran a step in the sandbox, and committed.
    assert delta(after, before, "backstate_step_sandbox_seconds_count") >= 13
    assert delta(after, before, "backstate_commits_total") >= 1
    assert delta(after, before, "backstate_commit_writes_total") >= 13
    assert after.value("backstate_vms") >= 1


def test_metrics_count_websocket_connections_and_frames(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "w")
    before = scrape(server.url)
    token = mint(server.admin.key_id, server.admin.secret, act={"sub": "watcher"})
    with Realtime(server.url, token) as rt:
        rt.subscribe("counter", "w")
        rt.update()                                   # the current state
        assert api.send("counter", "w", {"type": "inc"}).status_code == 200
        rt.update()                                   # the new one
        rt.ping()
        wait_for(lambda: delta(scrape(server.url), before,
                               "backstate_websocket_frames_total", direction="received") == 2,
                 "the subscribe and the ping counted")
        during = scrape(server.url)
        assert delta(during, before, "backstate_websocket_connections_opened_total") == 1
        assert delta(during, before, "backstate_websocket_connections") == 1
        assert delta(during, before, "backstate_websocket_frames_total", direction="sent") == 2
    wait_for(lambda: delta(scrape(server.url), before, "backstate_websocket_connections") == 0,
             "the closed connection no longer counted")


def test_the_metrics_token_guards_metrics(settings: Settings, shared_runtime: Runtime) -> None:
    settings = settings.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    with run_server(create_app(settings, runtime=shared_runtime)) as url:
        assert_error(httpx.get(url + "/metrics"), 403, "unauthorized")
        assert_error(httpx.get(url + "/metrics", headers={"authorization": "Bearer nope"}), 403)
        assert "backstate_events_total" in scrape(url, authorization="Bearer scrape-me").names()
        assert httpx.get(url + "/healthz").status_code == 200   # health is never guarded


def test_health_and_readiness(server: Server) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"ok": True}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ok"] is True
    # The schema moved on without this server (or it was started ahead of a migration).
    with server.services.db.transaction() as session:
        head = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        body = assert_error(httpx.get(server.url + "/readyz"), 503, "schema-outdated")
        assert "0001" in body["error"] and head in body["error"]
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        with server.services.db.transaction() as session:
            session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert httpx.get(server.url + "/readyz").status_code == 200


def test_every_response_carries_a_request_id(api: Api) -> None:
    first, second = api.request("GET", "/machines"), api.request("GET", "/machines")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert len(first.headers["x-request-id"]) == 16
    mine = api.request("GET", "/machines", headers={"x-request-id": "from-the-proxy-42"})
    assert mine.headers["x-request-id"] == "from-the-proxy-42"
    odd = api.request("GET", "/machines", headers={"x-request-id": 'a "quoted" id'})
    assert odd.headers["x-request-id"] != 'a "quoted" id'   # replaced, not echoed
    api.create_machine("counter", COUNTER)   # the fast path of events too
    api.create_instance("counter", "a")
    sent = api.request("POST", "/machines/counter/i/a/events", {"event": {"type": "inc"}},
                       headers={"x-request-id": "evt-1"})
    assert sent.status_code == 200 and sent.headers["x-request-id"] == "evt-1"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("backstate")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_json_log_lines_name_the_request_and_the_instance(
        server: Server, json_lines: Lines) -> None:
    """The formatter writes the log context of the task or thread that logs (a step thread's
    is its request's: tests/runtime/test_threads_context.py)."""
    logging.getLogger("backstate.test").warning("outside any request")
    token = logcontext.REQUEST_ID.set("req-7")
    instance = logcontext.INSTANCE.set((server.admin.org_id, "counter", "a"))
    try:
        logging.getLogger("backstate.test").error("inside", exc_info=ValueError("why"))
    finally:
        logcontext.REQUEST_ID.reset(token)
        logcontext.INSTANCE.reset(instance)
    outside, inside = json_lines.lines[-2:]
    assert outside["message"] == "outside any request" and "request_id" not in outside
    assert inside["request_id"] == "req-7" and inside["level"] == "ERROR"
    assert (inside["machine"], inside["instance"]) == ("counter", "a")
    assert "ValueError: why" in str(inside["exception"])
    assert str(inside["time"]).endswith("Z")


@pytest.mark.postgres
def test_a_database_outage_answers_503_and_passes(tmp_path: Path, shared_runtime: Runtime
                                                  ) -> None:
    """The network to PostgreSQL cut: requests answer 503 database-unavailable (nothing half
    done), /readyz says not ready, /healthz still alive; restored, the node serves again and
    only the acknowledged events are in the state."""
    base = postgres_url()
    if base is None:
        pytest.skip("needs BACKSTATE_TEST_POSTGRES_URL")
    with postgres_schema(base) as direct:
        url = make_url(direct)
        with cuttable((url.host or "127.0.0.1", url.port or 5432)) as proxy:
            through = url.set(host="127.0.0.1", port=proxy.port)
            settings = Settings(database_url=through.render_as_string(hide_password=False),
                                secret=TEST_SECRET, window_s=5.0, timer_poll_s=0.1)
            app = create_app(settings, runtime=shared_runtime)
            made = init(settings, app.state.services.db)
            with run_server(app) as server_url, Api.for_key(server_url, made.key_id,
                                                           made.secret) as api:
                api.create_machine("counter", COUNTER)
                api.create_instance("counter", "a")
                acknowledged = int(api.send("counter", "a", {"type": "inc"}).status_code == 200)
                before = scrape(server_url)
                proxy.cut()
                assert_error(api.send("counter", "a", {"type": "inc"}), 503,
                             "database-unavailable")
                assert_error(httpx.get(server_url + "/readyz", timeout=30), 503,
                             "database-unavailable")
                assert httpx.get(server_url + "/healthz").status_code == 200
                during = scrape(server_url)
                assert delta(during, before, "backstate_errors_total", status="503",
                             code="database-unavailable") >= 2
                proxy.restore()
                wait_for(lambda: httpx.get(server_url + "/readyz").status_code == 200,
                         "ready again")

                def one_acknowledged() -> bool:
                    nonlocal acknowledged
                    status = api.send("counter", "a", {"type": "inc"}).status_code
                    assert status in (200, 503), status   # a stale pooled connection: 503
                    acknowledged += status == 200
                    return status == 200

                wait_for(one_acknowledged, "an event acknowledged after the outage")
                assert api.ok("GET", "/machines/counter/i/a")["publicContext"]["count"] \
                    == acknowledged == 2


def environ(pid: int) -> dict[str, str]:
    """A process's environment as it started (a worker's: as its supervisor spawned it)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_two_workers_answer_one_view_of_metrics_and_log_json(tmp_path: Path) -> None:
    """`serve --workers 2` with JSON logs: events dealt to both workers, and every scrape,
    whichever worker answers it, counts all of them; each access line names its request and
    instance; the workers' metrics folder is the server's own and goes with it."""
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    settings = Settings(database_url=database, secret=TEST_SECRET)
    db = open_database(settings)
    try:
        made = init(settings, db)
    finally:
        db.dispose()
    port = free_port()
    log_file = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "BACKSTATE_SECRET": TEST_SECRET,
           "BACKSTATE_LOG_FORMAT": "json", "BACKSTATE_WORKERS": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--database-url",
             database, "--log-level", "info"], cwd=REPO, env=env, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        wait_for_process(lambda: len(workers(process.pid)) == 2, "two workers", process)
        folder = Path(environ(workers(process.pid)[0])["PROMETHEUS_MULTIPROC_DIR"])
        api = Api.for_key(url, made.key_id, made.secret)
        api.create_machine("counter", COUNTER)
        api.create_instance("counter", "a")
        events = 12
        for n in range(events):   # a connection each: dealt to the workers in turn
            with Api.for_key(url, made.key_id, made.secret) as fresh:
                sent = fresh.request("POST", "/machines/counter/i/a/events",
                                     {"event": {"type": "inc"}},
                                     headers={"x-request-id": f"evt-{n}"})
                assert sent.status_code == 200
        api.close()
        workers_counting = {f.name.rsplit("_", 1)[1] for f in folder.glob("counter_*.db")}
        assert len(workers_counting) == 2, workers_counting
        for _ in range(6):   # fresh connections: each worker answers some of these
            assert scrape(url).value("backstate_events_total", {"outcome": "ok"}) == events
    finally:
        process.terminate()
        process.wait(30)
    assert not folder.exists()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()
             if line.startswith("{")]
    access = {line["request_id"]: line for line in lines
              if line["logger"] == "uvicorn.access" and "request_id" in line}
    for n in range(events):
        line = access[f"evt-{n}"]
        assert (line["method"], line["path"], line["status"]) == (
            "POST", "/machines/counter/i/a/events", 200)
        assert (line["org"], line["machine"], line["instance"]) == (
            str(ids.decode("org", made.org_id)), "counter", "a")
