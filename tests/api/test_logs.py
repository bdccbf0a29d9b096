"""`GET /logs` on a real server (SQLite and PostgreSQL): what machines print reaches it, with
the runtime's own lines about failed steps and dropped timers, and its cursor keeps the
contract `logs.watch` relies on."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from api import ids
from api.app import build_runtime, create_app
from api.bootstrap import init
from api.services.logs import iso_ms, parse_time
from api.settings import Settings
from runtime.clock import SystemClock
from runtime.engine import Runtime
from runtime.store import logs as log_rows
from tests.conftest import Server
from tests.support.bundles import CHATTY
from tests.support.client import Admin, Api, assert_error
from tests.support.server import run_server

ALICE = {"sub": "alice"}
SETTLE_S = 0.3
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EPOCH = "2020-01-01T00:00:00.000Z"

FLAKY_TIMER = """
import { createMachine } from "npm:xstate";
export default createMachine({
  id: "flaky", predictableActionArguments: true, initial: "idle",
  states: {
    idle: { on: { start: "waiting" } },
    waiting: { after: { 50: { target: "rang", actions: () => {
      console.log("ringing"); throw new Error("the bell is broken"); } } } },
    rang: {},
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


@pytest.fixture(scope="module")
def quick_runtime() -> Runtime:
    """A runtime whose machines may run 0.5 s at a stretch: the time limit comes quickly."""
    return build_runtime(Settings(window_s=5.0, slice_s=0.5), SystemClock())


@pytest.fixture
def logged(settings: Settings, quick_runtime: Runtime) -> Iterator[Server]:
    changed = settings.model_copy(update={
        "log_settle_s": SETTLE_S, "log_flush_s": 0.05, "timer_poll_s": 0.05,
        "timer_attempts": 2, "timer_retry_s": 0.1,
    })  # fmt: skip
    app = create_app(changed, runtime=quick_runtime)
    made = init(changed, app.state.services.db)
    with run_server(app) as url:
        yield Server(url, app, changed, Admin(made.org_id, made.key_id, made.secret))


@pytest.fixture
def api(logged: Server) -> Iterator[Api]:
    with logged.client(act=ALICE) as client:
        yield client


def logs(api: Api, **query: str) -> dict[str, Any]:
    body: dict[str, Any] = api.ok("GET", "/logs", params={"from": EPOCH, **query})
    return body


def wait_for_lines(api: Api, wanted: list[str], **query: str) -> list[dict[str, Any]]:
    """The entries once every wanted line is among them (they settle after `SETTLE_S`)."""
    deadline = time.monotonic() + 20
    while True:
        entries = logs(api, **query)["logs"]
        lines = [line for entry in entries for line in entry["log"].split("\n")]
        if all(line in lines for line in wanted):
            return list(entries)
        assert time.monotonic() < deadline, f"never logged {wanted}; got {lines}"
        time.sleep(0.05)


def by_line(entries: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return next(e for e in entries if text in e["log"].split("\n"))


def test_console_output_of_actions_guards_and_authorizers_reaches_the_logs(
    logged: Server, api: Api
) -> None:
    version = api.create_machine("chatty", CHATTY)
    api.create_instance("chatty", "i1")
    api.ok("POST", "/machines/chatty/i/i1/events", {"event": "inc"})
    api.ok("POST", "/machines/chatty/i/i1/events", {"event": "guarded"})
    api.ok("POST", "/machines/chatty/i/i1/events", {"event": "shout"})
    api.ok("GET", "/machines/chatty/i/i1")
    entries = wait_for_lines(api, ["allowWrite for alice", "count was 0", "the guard says no",
                                   "shouting", "allowRead for alice"])
    action = by_line(entries, "count was 0")
    assert action == {
        "timestamp": action["timestamp"], "orgId": logged.admin.org_id, "machineName": "chatty",
        "instanceName": "i1", "machineVersionId": version, "outputType": "stdout",
        "log": action["log"],
    }  # fmt: skip
    assert ISO.match(action["timestamp"])
    assert by_line(entries, "shouting")["outputType"] == "stderr"
    stamps = [e["timestamp"] for e in entries]
    assert stamps == sorted(stamps)


def test_a_failed_step_keeps_its_lines_and_the_runtime_says_why(api: Api) -> None:
    api.create_machine("chatty", CHATTY)
    api.create_instance("chatty", "i1")
    assert_error(api.send("chatty", "i1", "boom"), 400)
    assert_error(api.send("chatty", "i1", "spin"), 400, "time-limit-exceeded")
    # (what the spinning call printed is lost with its VM: the sandbox stopped it mid-call)
    entries = wait_for_lines(api, [
        "about to throw", "[backstate] the step failed and changed nothing: Error: boom",
        "[backstate] the step failed and changed nothing: the machine ran past its time limit "
        "and was stopped"])
    assert by_line(entries, "about to throw")["outputType"] == "stdout"
    assert by_line(entries, "[backstate] the step failed and changed nothing: Error: boom")[
        "outputType"] == "stderr"
    assert api.ok("GET", "/machines/chatty/i/i1")["publicContext"] == {"count": 0}


def test_a_timer_dropped_after_its_retries_is_logged(api: Api) -> None:
    version = api.create_machine("flaky", FLAKY_TIMER)
    api.create_instance("flaky", "i1")
    api.ok("POST", "/machines/flaky/i/i1/events", {"event": "start"})
    deadline = time.monotonic() + 20
    while not any("dropped" in e["log"] for e in logs(api, machine="flaky")["logs"]):
        assert time.monotonic() < deadline, logs(api, machine="flaky")
        time.sleep(0.05)
    entries = logs(api, machine="flaky")["logs"]
    assert [e["log"] for e in entries].count("ringing") == 2, "two attempts, each printed"
    dropped = next(e for e in entries if "dropped" in e["log"])
    assert dropped["log"].startswith("[backstate] timer ")
    assert "dropped: its delivery failed 2 time(s)" in dropped["log"]
    assert "the bell is broken" in dropped["log"]
    assert (dropped["outputType"], dropped["machineVersionId"]) == ("stderr", version)


def test_logs_filter_by_machine_instance_and_version(api: Api) -> None:
    v1 = api.create_machine("chatty", CHATTY)
    v2 = api.upload_version("chatty", CHATTY.replace("count was", "count is"))
    api.create_instance("chatty", "old", machineVersionId=v1)
    api.create_instance("chatty", "new")
    api.create_machine("other", CHATTY)
    api.create_instance("other", "old")
    for machine, instance in [("chatty", "old"), ("chatty", "new"), ("other", "old")]:
        api.ok("POST", f"/machines/{machine}/i/{instance}/events", {"event": "inc"})
    wait_for_lines(api, ["count was 0", "count is 0"], machine="chatty")
    wait_for_lines(api, ["count was 0"], machine="other")  # each settles in its own time

    def seen(**query: str) -> set[tuple[str, str, str]]:
        return {(e["machineName"], e["instanceName"], line) for e in logs(api, **query)["logs"]
                for line in e["log"].split("\n") if line.startswith("count")}

    assert seen(machine="chatty") == {("chatty", "old", "count was 0"),
                                      ("chatty", "new", "count is 0")}
    assert seen(instance="old") == {("chatty", "old", "count was 0"),
                                    ("other", "old", "count was 0")}
    assert seen(machine="chatty", instance="old") == {("chatty", "old", "count was 0")}
    assert seen(version=v2) == {("chatty", "new", "count is 0")}
    assert seen(machine="other", version=v2) == set()
    assert seen(machine="nothing") == set()


def test_the_cursor_never_repeats_nor_passes_an_entry(logged: Server, api: Api) -> None:
    org = ids.decode("org", logged.admin.org_id)
    assert org is not None
    base = int(time.time() * 1000) - 3_600_000   # an hour ago: settled, within the retention
    # 60 entries in one millisecond, 60 in the next, 30 in the one after: a page of 100 would
    # end inside the second millisecond
    stamps = [base] * 60 + [base + 1] * 60 + [base + 2] * 30
    _insert(logged, org, stamps)
    start = iso_ms(base)
    pages, cursor = [], start
    while True:
        page = logs(api, **{"from": cursor})
        pages.append(page)
        if not page["logs"]:
            assert page["maxTimestamp"] == cursor, "nothing new: `from`, exactly"
            break
        assert len(page["logs"]) <= 100
        last = parse_time(page["logs"][-1]["timestamp"], "t")
        assert page["maxTimestamp"] == iso_ms(last + 1)
        cursor = page["maxTimestamp"]
    assert [len(p["logs"]) for p in pages] == [60, 90, 0]
    texts = [e["log"] for p in pages for e in p["logs"]]
    assert texts == [f"line {n}" for n in range(150)]

    # `from` is inclusive, `to` exclusive; a range that is over ends at `to`
    assert len(logs(api, **{"from": iso_ms(base + 1), "to": iso_ms(base + 2)})["logs"]) == 60
    ended = logs(api, **{"from": iso_ms(base + 3), "to": iso_ms(base + 10)})
    assert ended == {"maxTimestamp": iso_ms(base + 10), "logs": []}
    # `from` is echoed in toISOString()'s format whatever form it came in
    assert logs(api, **{"from": "2030-01-01T00:00:00Z"}) == {
        "maxTimestamp": "2030-01-01T00:00:00.000Z", "logs": []}


def test_entries_show_once_settled(logged: Server, api: Api) -> None:
    org = ids.decode("org", logged.admin.org_id)
    assert org is not None
    now = int(time.time() * 1000)
    _insert(logged, org, [now + 60_000])   # "in the future": not settled for a minute
    assert logs(api, **{"from": iso_ms(now)}) == {"maxTimestamp": iso_ms(now), "logs": []}


def _insert(server: Server, org: uuid.UUID, stamps: list[int]) -> None:
    with server.services.db.transaction() as session:
        log_rows.insert_many(session, [
            log_rows.NewEntry(org, ts, "m", "i", None, "stdout", f"line {n}")
            for n, ts in enumerate(stamps)
        ])


BAD_QUERIES: list[tuple[dict[str, str], str]] = [
    ({}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"from": EPOCH, "to": "2024-13-45"}, "to"),
    ({"from": EPOCH, "version": "v1"}, "version"),
    ({"from": EPOCH, "version": "ver_AAAA"}, "version"),
    ({"from": EPOCH, "machine": "no spaces"}, "machine"),
    ({"from": EPOCH, "instance": "x" * 129}, "instance"),
]


@pytest.mark.parametrize(("query", "parameter"), BAD_QUERIES)
def test_bad_queries_name_the_parameter(server: Server, query: dict[str, str],
                                        parameter: str) -> None:
    with server.client() as api:
        body = assert_error(api.request("GET", "/logs", params=query), 400, "invalid-parameter")
        assert body["parameter"] == parameter


def test_logs_need_the_logs_read_scope(server: Server) -> None:
    with server.client() as admin:
        made = admin.ok("POST", "/keys", {"name": "prod", "use": "production"})
    with Api.for_key(server.url, made["id"], made["key"]) as production:
        assert_error(production.request("GET", "/logs", params={"from": EPOCH}), 403,
                     "missing-scope")


def test_a_failing_log_store_fails_no_event(logged: Server, api: Api,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs are written apart from the commit: if they cannot be stored, the events that
    printed them still succeed, and the lost lines are counted."""
    api.create_machine("chatty", CHATTY)
    api.create_instance("chatty", "i1")
    writer = logged.services.logs.writer

    def refuse(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("the logs table is gone")

    monkeypatch.setattr(log_rows, "insert_many", refuse)
    before = writer.dropped
    assert api.send("chatty", "i1", "inc").json()["publicContext"] == {"count": 1}
    deadline = time.monotonic() + 20
    while writer.dropped == before:
        assert time.monotonic() < deadline, "the writer never tried to store the lines"
        time.sleep(0.02)
