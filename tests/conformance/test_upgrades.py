"""Conformance of upgraded instances: after an upgrade, an instance must go on exactly as the new
version's machine does under the real xstate 4.38.3.

An instance of scenario A is replayed through backstate up to step k, upgraded to scenario B's
machine (runtime/migrations.py, a migration mapping A's states to B's), then driven with the
rest of B's script. B's script is A's with B's names, so xstate's own trace of B is what the
upgraded instance must show: at the upgrade (value, context, tags, done, toStrings and the
timers still pending) and at every later step. Every k is tried, so the upgrade meets every
configuration and history the scenario reaches.

- history_parallel -> history_parallel_renamed: states renamed, deep history over a parallel
  state, so the history the upgrade rebuilt is what RESUME restores;
- after -> after (an identity migration into a second copy of the version): pending `after`
  timers survive the upgrade with their delays and fire as xstate's do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from typing import Any

import pytest

from runtime.engine import Runtime
from runtime.migrations import Hop, PendingTimer, load_migration, upgrade
from tests.conformance.test_conformance import (
    HERE,
    ROOT,
    SCENARIOS,
    XSTATE,
    Replay,
    assert_same_step,
    observe,
    pending_records,
    to_strings,
)

RENAMES = {"session": "take", "mixing": "desk", "left": "vox", "right": "amp", "hot": "scorching"}
RENAMING = f"""
const RENAMES = {RENAMES!r};
export const upgradeState = (path) => path.map((key) => RENAMES[key] ?? key);
export const upgradeContext = (oldPaths, newPaths, context) => context;
"""
IDENTITY = """
export const upgradeState = (path) => path;
export const upgradeContext = (oldPaths, newPaths, context) => context;
"""
UPGRADES = {
    "history_parallel": ("history_parallel_renamed", RENAMING),
    "after": ("after", IDENTITY),
}
COMPARED_AT_UPGRADE = ("value", "context", "tags", "done", "toStrings", "pending")


@pytest.fixture(scope="module")
def traces() -> dict[str, list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the conformance oracle runs the real xstate on Node")
    if not (XSTATE / "package.json").exists():
        pytest.skip(f"{XSTATE} is missing: run `make setup` (npm ci in js_shims)")
    names = sorted({name for pair in UPGRADES.items() for name in (pair[0], pair[1][0])})
    proc = subprocess.run([node, str(HERE / "oracle.mjs"), *names], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, list[dict[str, Any]]] = json.loads(proc.stdout)
    return loaded


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime()


def upgrade_points() -> list[Any]:
    lengths = {name: _script_length(name) for name in UPGRADES}
    return [pytest.param(name, at, id=f"{name}-at-{at}")
            for name, length in lengths.items() for at in range(length - 1)]


def _script_length(name: str) -> int:
    source = (SCENARIOS / f"{name}.mjs").read_text()
    return source[source.index("export const script"):].count("\n  {")


@pytest.mark.parametrize(("scenario", "at"), upgrade_points())
def test_an_upgraded_instance_goes_on_as_xstate(
    scenario: str, at: int, runtime: Runtime, traces: dict[str, list[dict[str, Any]]]
) -> None:
    target, migration_source = UPGRADES[scenario]
    old, new = traces[scenario], traces[target]
    assert [s["step"] for s in old] == [s["step"] for s in new], "the scripts must match"
    assert len(old) == _script_length(scenario), "every upgrade point is tried"
    session = Replay(runtime, runtime.compile((SCENARIOS / f"{scenario}.mjs").read_text()))
    for step in old[: at + 1]:
        session.step(step["step"])
    assert session.state_json is not None
    version = runtime.compile((SCENARIOS / f"{target}.mjs").read_text())
    hop = Hop(uuid.uuid4(), load_migration(runtime, migration_source), uuid.uuid4(), version)
    pending = [PendingTimer(t.send_id, t.event["type"]) for t in session.timers.values()]
    upgraded = upgrade(runtime, start=session.version, hops=[hop],
                       state_json=session.state_json, event={"type": "statebacked.upgrade"},
                       timers=pending)
    assert upgraded.dropped == [], "every pending timer's state is still there"
    session.version, session.state_json = version, upgraded.state_json
    at_upgrade = {
        "value": upgraded.view.value,
        "context": upgraded.context,
        "tags": sorted(upgraded.view.tags),
        "done": upgraded.view.done,
        "toStrings": to_strings(upgraded.view.value),
        "pending": pending_records(session.timers),
    }
    expected = {name: new[at][name] for name in COMPARED_AT_UPGRADE}
    assert_same_step(f"{target} (upgraded)", at, expected, at_upgrade, COMPARED_AT_UPGRADE)
    for index in range(at + 1, len(new)):
        actual = observe(session.step(new[index]["step"]), session.timers)
        assert_same_step(f"{target} (upgraded at step {at})", index, new[index], actual)
