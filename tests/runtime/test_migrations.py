"""Migrations in the runtime: the graph's paths, loading bundles, and one upgrade run in VMs."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runtime.engine import LoadedVersion, Runtime
from runtime.errors import BundleError, UpgradeFailedError
from runtime.migrations import Graph, Hop, PendingTimer, Upgraded, load_migration, upgrade
from runtime.results import StepResult
from tests.runtime.conftest import load
from tests.support.migrations import (
    STUDIO_V1,
    STUDIO_V2,
    STUDIO_V3,
    V1_TO_V2,
    V2_TO_V1,
    V2_TO_V3,
    migration,
)

EVENT = {"type": "statebacked.upgrade"}
PAUSE_AFTER = "xstate.after(3600000)#studio.pause"
PAUSE_TIMER = PendingTimer(PAUSE_AFTER, PAUSE_AFTER)


# --- the graph -----------------------------------------------------------------------------


@dataclass(frozen=True)
class E:
    from_version_id: uuid.UUID
    to_version_id: uuid.UUID
    created_at: datetime
    id: uuid.UUID


def edges(*pairs: tuple[str, str]) -> list[E]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [E(V[a], V[b], start + timedelta(seconds=n), uuid.uuid4())
            for n, (a, b) in enumerate(pairs)]


V = {name: uuid.uuid4() for name in "abcde"}


def hops(path: list[Any] | None) -> list[str] | None:
    names = {v: k for k, v in V.items()}
    if path is None:
        return None
    return [names[e.from_version_id] + names[e.to_version_id] for e in path]


def test_graph_finds_the_shortest_path_in_either_direction() -> None:
    graph = Graph(edges(("a", "b"), ("b", "c"), ("c", "d"), ("b", "d"), ("d", "b"), ("b", "a")))
    assert hops(graph.path(V["a"], V["d"])) == ["ab", "bd"]
    assert hops(graph.path(V["d"], V["a"])) == ["db", "ba"]
    assert hops(graph.path(V["a"], V["a"])) == []
    assert graph.path(V["a"], V["e"]) is None
    assert hops(graph.path(V["c"], V["a"])) == ["cd", "db", "ba"]
    assert graph.path(V["e"], V["a"]) is None


def test_graph_uses_the_newest_migration_between_two_versions() -> None:
    made = edges(("a", "b"), ("a", "b"))
    path = Graph(reversed(made)).path(V["a"], V["b"])
    assert path is not None and [e.id for e in path] == [made[1].id]


# --- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "message"), [
    ("export const upgradeState = (p) => p;", "upgradeContext"),
    ("export const upgradeContext = 1; export const upgradeState = (p) => p;", "found number"),
    ("export default {};", "upgradeState"),
    ("this is not { javascript", "not a valid ES module"),
    ("import x from 'lodash'; export const upgradeState = x, upgradeContext = x;", "lodash"),
    ("throw new Error('top level');", "top level"),
])
def test_invalid_migration_bundles_are_refused(runtime: Runtime, source: str,
                                               message: str) -> None:
    with pytest.raises(BundleError, match=message):
        load_migration(runtime, source)


def test_a_migration_may_import_xstate(runtime: Runtime) -> None:
    load_migration(runtime, 'import { assign } from "xstate";\n' + migration("(p) => p"))


# --- upgrades ------------------------------------------------------------------------------


def drive(rt: Runtime, version: LoadedVersion, events: list[str],
          state_json: str | None = None) -> StepResult:
    if state_json is None:
        result = rt.create(version, instance_name="i", context=None, auth_context={},
                           on_commit=lambda m: None)
        state_json = result.final.state_json
    for event in events:
        result = rt.send(version, instance_name="i", state_json=state_json, event=event,
                         auth_context={}, on_commit=lambda m: None)
        state_json = result.final.state_json
    return result


def run_upgrade(rt: Runtime, state_json: str, *steps: tuple[str, str],
                start: str = STUDIO_V1, timers: list[PendingTimer] | None = None) -> Upgraded:
    hop_list = [Hop(uuid.uuid4(), load_migration(rt, code), uuid.uuid4(), load(rt, target))
                for code, target in steps]
    return upgrade(rt, start=load(rt, start), hops=hop_list, state_json=state_json,
                   event=EVENT, timers=timers or [])


def paused_with_history(rt: Runtime) -> str:
    """v1 paused, remembering vocals live and right loud.hot."""
    return drive(rt, load(rt, STUDIO_V1), ["LEFT", "RIGHT", "HEAT", "BREAK"]).final.state_json


def test_two_migrations_move_state_history_and_context(runtime: Runtime) -> None:
    up = run_upgrade(runtime, paused_with_history(runtime), (V1_TO_V2, STUDIO_V2),
                     (V2_TO_V3, STUDIO_V3), timers=[PAUSE_TIMER])
    assert up.view.value == "pause" and up.dropped == []
    assert up.context == {"breaks": 1, "version": 3, "upgrades": 1}
    # upgradeState once per distinct leaf path: the current one and the remembered ones
    seen = sorted(line.text for line in up.logs if line.text.startswith("v1->v2"))
    assert seen == ['v1->v2 state ["pause"]',
                    'v1->v2 state ["session","mixing","left","live"]',
                    'v1->v2 state ["session","mixing","right","loud","hot"]']
    assert [line.text for line in up.logs if "context" in line.text] == ["v2->v3 context"]
    state = json.loads(up.state_json)
    assert state["event"] == EVENT and state["actions"] == [] and "history" not in state
    # the deep history, rebuilt for v3, takes the instance back where v1 left it
    resumed = drive(runtime, load(runtime, STUDIO_V3), ["RESUME"], up.state_json).final
    assert resumed.view.value == {"session": {"mix": {
        "vocals": "live", "right": {"loud": "blazing"}, "drums": "silent"}}}
    assert resumed.view.tags == ["left-live"]


def test_upgrade_context_sees_the_old_and_new_leaf_paths(runtime: Runtime) -> None:
    state = drive(runtime, load(runtime, STUDIO_V1), ["LEFT"]).final.state_json
    up = run_upgrade(runtime, state, (V1_TO_V2, STUDIO_V2))
    old, new = up.context["moved"]
    assert sorted(old) == [["session", "mixing", "left", "live"],
                           ["session", "mixing", "right", "quiet"]]
    assert sorted(new) == [["session", "mix", "right", "quiet"],
                           ["session", "mix", "vocals", "live"]]
    assert up.view.value == {"session": {"mix": {"vocals": "live", "right": "quiet"}}}
    assert up.view.tags == ["left-live"]


@pytest.mark.parametrize("target", ['["session"]', "[]"])
def test_a_path_to_a_compound_state_enters_its_initial_states(runtime: Runtime,
                                                              target: str) -> None:
    to_session = migration(f'(p) => p[0] === "pause" ? {target} : p')
    up = run_upgrade(runtime, paused_with_history(runtime), (to_session, STUDIO_V1))
    assert up.view.value == {"session": {"mixing": {"left": "muted", "right": "quiet"}}}


def test_migrating_back_needs_its_own_migration(runtime: Runtime) -> None:
    state = drive(runtime, load(runtime, STUDIO_V2), ["VOCALS", "BREAK"]).final.state_json
    up = run_upgrade(runtime, state, (V2_TO_V1, STUDIO_V1), start=STUDIO_V2)
    assert up.context == {"breaks": 1}
    resumed = drive(runtime, load(runtime, STUDIO_V1), ["RESUME"], up.state_json).final
    assert resumed.view.value == {"session": {"mixing": {"left": "live", "right": "quiet"}}}


def test_after_timers_of_states_the_upgrade_left_are_dropped(runtime: Runtime) -> None:
    to_waiting = migration('(p) => p[0] === "pause" ? ["waiting"] : p')
    other = PendingTimer("reminder", "remind")
    gone = PendingTimer("xstate.after(5)#studio.nowhere", "xstate.after(5)#studio.nowhere")
    renamed = PendingTimer("xstate.after(3600000)#studio.pause", "xstate.after(10)#studio.pause")
    up = run_upgrade(runtime, paused_with_history(runtime), (to_waiting, STUDIO_V1),
                     timers=[PAUSE_TIMER, other, gone, renamed])
    assert up.view.value == "waiting"
    reasons = {d.send_id: d.reason for d in up.dropped}
    assert set(reasons) == {PAUSE_TIMER.send_id, gone.send_id}
    assert "not active" in reasons[PAUSE_TIMER.send_id]
    assert "does not exist" in reasons[gone.send_id]
    kept = run_upgrade(runtime, paused_with_history(runtime), (migration("(p) => p"), STUDIO_V1),
                       timers=[PAUSE_TIMER, renamed])
    assert [(d.send_id, "no such delayed transition" in d.reason) for d in kept.dropped] == [
        (renamed.send_id, True)]


@pytest.mark.parametrize(("upgrade_state", "upgrade_context", "message"), [
    ('(p) => { throw new Error("boom"); }', None, r"upgradeState\(\[.*threw Error: boom"),
    ("(p) => p", '() => { throw new TypeError("bad context"); }', "threw TypeError: bad context"),
    ('(p) => ["nowhere"]', None, r'no state \["nowhere"\]'),
    ('(p) => [...p, "deeper"]', None, "has no state"),
    ('(p) => ["session", "resume"]', None, "history pseudo-state"),
    ('(p) => p.includes("left") ? ["session", "recording"] : p', None, "cannot be active together"),
    ("(p) => p.join('.')", None, "must return an array of state names"),
    ('(p) => ["session", ""]', None, "must return an array of state names"),
    ("async (p) => p", None, "not a Promise"),
    ("(p) => p", "() => [1, 2]", "must return an object"),
    ("(p) => p", "(o, n, c) => ({ ...c, f: () => 1 })", r"context\.f as a function"),
    ("(p) => p", "(o, n, c) => ({ ...c, n: NaN })", "JSON cannot hold"),
    ("(p) => p", "(o, n, c) => ({ big: 'x'.repeat(500000) })", "over the 400000 byte limit"),
])
def test_failing_migrations_name_the_reason(runtime: Runtime, upgrade_state: str,
                                            upgrade_context: str | None, message: str) -> None:
    code = migration(upgrade_state, *([upgrade_context] if upgrade_context else []))
    with pytest.raises(UpgradeFailedError, match=message) as failed:
        run_upgrade(runtime, paused_with_history(runtime), (code, STUDIO_V1))
    assert failed.value.logs[-1].stream == "stderr"
    assert failed.value.logs[-1].text == f"[backstate] {failed.value.message}"


def test_a_failure_keeps_the_logs_before_it(runtime: Runtime) -> None:
    code = migration('(p) => { console.log("looking at", p[0]); throw new Error("no"); }')
    with pytest.raises(UpgradeFailedError) as failed:
        run_upgrade(runtime, paused_with_history(runtime), (code, STUDIO_V1))
    texts = [line.text for line in failed.value.logs]
    assert texts[0].startswith("looking at") and "threw Error: no" in texts[-1]


@pytest.mark.parametrize(("upgrade_state", "message"), [
    ("(p) => { while (true) {} }", "time limit"),
    ("(p) => { const a = []; for (;;) a.push(new ArrayBuffer(1 << 20)); }", "out of memory"),
    ("(p) => 'x'.repeat(2 ** 29)", "out of memory|string too long"),
    ("function f(p) { return f(p) + 1; }", "call stack|stack overflow"),
])
def test_runaway_migrations_are_stopped(tight_runtime: Runtime, upgrade_state: str,
                                        message: str) -> None:
    with pytest.raises(UpgradeFailedError, match=message):
        run_upgrade(tight_runtime, paused_with_history(tight_runtime),
                    (migration(upgrade_state), STUDIO_V1))
    # the runtime goes on: the same upgrade with a sound migration works
    good = run_upgrade(tight_runtime, paused_with_history(tight_runtime),
                       (migration("(p) => p"), STUDIO_V1))
    assert good.view.value == "pause"
