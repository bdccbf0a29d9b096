"""Real time and logs with the unmodified official npm clients against a real `backstate serve`:
`@statebacked/client` 0.1.37's `machineInstances.subscribe`, `Actor.subscribe`, `logs.retrieve`
and `logs.watch` (`realtime_flow.mjs`), and smply 0.1.18's `logs get` and `logs watch`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import COMPAT, SMPLY, CompatServer, run, run_smply
from tests.support.server import REPO

pytestmark = [pytest.mark.compat, pytest.mark.slow]

MACHINE = "compat-game"
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def flow(compat_server: CompatServer) -> dict[str, Any]:
    env = {
        "API_URL": compat_server.url,
        "MACHINE": MACHINE,
        "ADMIN_KEY_ID": compat_server.admin.key_id,
        "ADMIN_SECRET": compat_server.admin.secret,
        "PROD_KEY_ID": compat_server.production.key_id,
        "PROD_SECRET": compat_server.production.secret,
        "NODE_OPTIONS": "--experimental-websocket",  # Node 20: the client's global WebSocket
    }
    done = run(["node", str(COMPAT / "realtime_flow.mjs")], env=env, cwd=COMPAT)
    assert done.returncode == 0, done.describe()
    observations: dict[str, Any] = json.loads(done.stdout)
    return observations


def test_subscribe_gets_the_current_state_then_updates_from_another_client_and_a_timer(
    flow: dict[str, Any],
) -> None:
    states = flow["subscribe"]["states"]
    assert flow["subscribe"]["errors"] == []
    assert states[0] == flow["created"]
    assert states[1] == flow["moved"], "the move another client made, with the ts HTTP gave"
    assert states[2] == flow["armed"]
    assert states[3]["state"] == "playing", "the timer moved the game on by itself"
    assert states[3]["ts"] > states[2]["ts"]
    assert [s["publicContext"] for s in states] == [{"score": 0}, {"score": 2}, {"score": 2},
                                                    {"score": 2}]


def test_a_subscriber_allowread_refuses_gets_rejected_by_machine_authorizer(
    flow: dict[str, Any],
) -> None:
    assert flow["bob"]["states"] == []
    assert flow["bob"]["errors"][0] == {"class": "RejectedByMachineAuthorizerError",
                                        "status": 403, "code": "rejected-by-machine-authorizer"}


def test_actor_subscribe_hears_moves_from_elsewhere_and_its_own(flow: dict[str, Any]) -> None:
    scores = [s["score"] for s in flow["actor"]["seen"]]
    assert scores[:1] == [2], "the actor starts where the instance stands"
    assert 5 in scores and scores[-1] == 9
    assert all(s["value"] == "playing" for s in flow["actor"]["seen"])


def _lines(entries: list[dict[str, Any]]) -> list[str]:
    return [line for entry in entries for line in entry["log"].split("\n")]


def test_logs_retrieve_shows_the_machines_console_lines(
    flow: dict[str, Any], compat_server: CompatServer
) -> None:
    retrieved = flow["retrieve"]
    lines = _lines(retrieved["logs"])
    told = [line for line in lines if "moved" in line or "timer" in line]
    assert told == ["moved by 2 from 0", "the timer fired", "moved by 3 from 2",
                    "moved by 4 from 5"]
    entry = next(e for e in retrieved["logs"] if "moved by 2" in e["log"])
    assert entry["orgId"] == compat_server.org_id
    assert (entry["machineName"], entry["instanceName"], entry["outputType"]) == (
        MACHINE, "game", "stdout")
    assert entry["machineVersionId"].startswith("ver_")
    assert retrieved["maxTimestamp"] > retrieved["logs"][-1]["timestamp"]
    # asked again from there: nothing new, and `from` echoed as toISOString() writes it
    assert flow["retrieveLater"] == {"maxTimestamp": retrieved["maxTimestamp"], "logs": []}


def test_logs_watch_yields_the_machines_console_lines(flow: dict[str, Any]) -> None:
    lines = _lines(flow["watch"])
    assert lines.index("moved by 2 from 0") < lines.index("moved by 4 from 5")
    # the same entries as retrieve gave, in the same order, each once
    retrieved = flow["retrieve"]["logs"]
    last = next(n for n, entry in enumerate(retrieved) if "moved by 4" in entry["log"])
    assert flow["watch"] == retrieved[: last + 1]


def test_smply_logs_get_shows_the_machines_console_lines(
    flow: dict[str, Any], compat_server: CompatServer, smply_home: Path
) -> None:
    got = run_smply(smply_home, compat_server.url, "logs", "get", "--from=-10m",
                    "-m", MACHINE, "-i", "game")
    assert got.returncode == 0, got.describe()
    printed = json.loads(got.stdout[got.stdout.index("{"):])
    assert "moved by 4 from 5" in _lines(printed["logs"])
    assert all(e["machineName"] == MACHINE for e in printed["logs"])


def test_smply_logs_watch_streams_the_machines_console_lines(
    flow: dict[str, Any], compat_server: CompatServer, smply_home: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(smply_home),
           "NODE_OPTIONS": "--experimental-websocket"}
    command = [str(SMPLY), "--api-url", compat_server.url, "logs", "watch", "--from=-10m",
               "-m", MACHINE, "--clean"]
    seen: list[str] = []
    with subprocess.Popen(command, cwd=COMPAT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as watch:
        assert watch.stdout is not None
        deadline = time.monotonic() + DEADLINE_S
        while "moved by 4 from 5" not in seen and time.monotonic() < deadline:
            line = watch.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
        watch.terminate()   # watch polls for ever; it printed what it had
        _, errors = watch.communicate(timeout=10)
    assert "moved by 2 from 0" in seen and "moved by 4 from 5" in seen, (seen, errors)
