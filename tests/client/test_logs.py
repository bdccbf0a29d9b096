"""Logs: the exact `retrieve`/`watch` contract (§1 #20), and a machine's console lines read
back from the real server."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from backstate_client import iso
from backstate_client._flow import Emit, Request, Response, Sleep
from backstate_client._logs import Logs

from tests.client.bundles import PLAYER

WAIT_S = 30
FROM = datetime(2024, 1, 1, tzinfo=UTC)


def test_iso_is_javascripts_to_iso_string() -> None:
    assert iso(FROM) == "2024-01-01T00:00:00.000Z"
    moment = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2024-02-29T21:59:59.999Z"  # UTC, milliseconds truncated
    with pytest.raises(ValueError, match="time zone"):
        iso(datetime(2024, 1, 1))


def entry(n: int) -> dict[str, Any]:
    return {"timestamp": "t", "orgId": "org_x", "machineName": "m", "instanceName": "i",
            "machineVersionId": "ver_x", "outputType": "stdout", "log": f"line {n}"}  # fmt: skip


class Script:
    """Drives the `watch` flow by hand: answers each `/logs` request with the next batch and
    records what the flow did (requests' query strings, sleeps, emitted entries)."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches = batches
        self.did: list[Any] = []

    def run(self, flow: Iterator[Any], steps: int) -> list[Any]:
        answer: Any = None
        for _ in range(steps):
            try:
                step = flow.send(answer)  # type: ignore[attr-defined]
            except StopIteration:
                self.did.append("end")
                break
            answer = None
            if isinstance(step, Request):
                assert step.method == "GET" and step.path == "/logs"
                self.did.append(dict(step.query))
                answer = Response(200, json.dumps(self.batches.pop(0)).encode())
            elif isinstance(step, Sleep):
                self.did.append(("sleep", step.seconds))
            else:
                assert isinstance(step, Emit)
                self.did.append(step.value["log"])
        return self.did


def watch(**kw: Any) -> Iterator[Any]:
    return Logs.watch._fn(None, FROM, **kw)  # the flow itself, without a client


def test_watch_waits_only_when_max_timestamp_echoes_from() -> None:
    script = Script([
        {"maxTimestamp": "2024-01-01T00:00:01.000Z", "logs": [entry(1), entry(2)]},
        {"maxTimestamp": "2024-01-01T00:00:02.500Z", "logs": []},  # moved on: ask again now
        {"maxTimestamp": "2024-01-01T00:00:02.500Z", "logs": []},  # the very `from`: wait
        {"maxTimestamp": "2024-01-01T00:00:03.000Z", "logs": [entry(3)]},
    ])  # fmt: skip
    assert script.run(watch(machine_name="m", idle_wait_s=7), 8) == [
        {"from": "2024-01-01T00:00:00.000Z", "machine": "m"},
        "line 1", "line 2",
        {"from": "2024-01-01T00:00:01.000Z", "machine": "m"},
        {"from": "2024-01-01T00:00:02.500Z", "machine": "m"},
        ("sleep", 7),
        {"from": "2024-01-01T00:00:02.500Z", "machine": "m"},
        "line 3",
    ]  # fmt: skip


def test_watch_ends_at_to() -> None:
    to = FROM + timedelta(seconds=2)
    script = Script([
        {"maxTimestamp": "2024-01-01T00:00:01.000Z", "logs": []},
        {"maxTimestamp": "2024-01-01T00:00:02.000Z", "logs": [entry(1)]},
    ])  # fmt: skip
    filters = {"instance_name": "i", "machine_version_id": "ver_x", "to": to}
    assert script.run(watch(**filters), 10) == [
        {"from": "2024-01-01T00:00:00.000Z", "instance": "i", "version": "ver_x",
         "to": "2024-01-01T00:00:02.000Z"},
        {"from": "2024-01-01T00:00:01.000Z", "instance": "i", "version": "ver_x",
         "to": "2024-01-01T00:00:02.000Z"},
        "line 1",
        "end",
    ]  # fmt: skip
    assert Script([]).run(watch(to=FROM), 1) == ["end"]


def test_console_lines_come_back_through_retrieve_and_watch(client: Any) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    client.machines.create("player")
    version = client.machine_versions.create("player", PLAYER, make_current=True)
    client.machine_instances.create("player", "loud")
    client.machine_instances.send_event("player", "loud", "play")

    # `watch` polls until a line comes: wait for the first one on a thread, with a deadline.
    logs = client.logs.watch(start, machine_name="player", idle_wait_s=0.2)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        found = pool.submit(next, logs).result(timeout=WAIT_S)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    assert found["log"].strip() == "play 1" and found["outputType"] == "stdout"
    assert (found["machineName"], found["instanceName"]) == ("player", "loud")
    assert found["machineVersionId"] == version["machineVersionId"]

    batch = client.logs.retrieve(start, instance_name="loud")
    assert [e["log"].strip() for e in batch["logs"]] == ["play 1"]
    assert iso(datetime.fromisoformat(batch["maxTimestamp"])) == batch["maxTimestamp"]
    later = client.logs.retrieve(datetime.fromisoformat(batch["maxTimestamp"]))
    assert later == {"maxTimestamp": batch["maxTimestamp"], "logs": []}  # nothing new: echoed
