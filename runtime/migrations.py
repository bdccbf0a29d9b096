"""Migrations between machine versions: the graph they form, and running them in the sandbox.

A migration bundle is an ES module exporting, as State Backed's do,

    upgradeState(oldLeafPath, context) -> newLeafPath             (a leaf path: ["a", "b"])
    upgradeContext(oldLeafPaths, newLeafPaths, context) -> newContext

    graph = Graph(edges)                        # the machine's final migrations
    graph.path(from_version, to_version)        # the fewest migrations leading there, or None
    migration = load_migration(runtime, source) # validated, loaded, snapshotted (BundleError)
    upgraded = upgrade(runtime, start=v0, hops=[Hop(...), ...], state_json=..., event=...,
                       timers=[...])            # UpgradeFailedError, with the logs, if it fails

An upgrade along v0 -m1-> v1 -m2-> v2, each call in a VM of its own under the step limits
(slice time, memory; js_shims/migration.js and js_shims/upgrade.js are the JavaScript side):

1. v0's machine says what migrations see of the persisted state (`upgradeLeaves`): the leaf
   paths of its configuration, every parallel region's, and of each value its history
   remembers (xstate's `historyValue`, a value per state node).
2. Each hop: the migration maps them (`upgradeState` once per distinct leaf path,
   `upgradeContext` once), and the version it leads to builds the state they describe
   (`upgradeBuild`): every path checked against that version's machine, the value resolved and
   the history rebuilt by xstate's own rules. The next migration sees that version's leaves.
3. The last version's build is the upgraded state, a `State` its own machine made, persisted as
   every state is; with it, the pending `after` timers that state can no longer take.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from runtime.engine import JS_DIR, LoadedVersion, Runtime
from runtime.errors import BackstateError, BundleError, UpgradeFailedError
from runtime.results import LogLine, PublicState
from runtime.step import Step

HARNESS = JS_DIR / "migration.js"
EXPORTS = ("upgradeState", "upgradeContext")


# --- the graph ---------------------------------------------------------------------------


class Edge(Protocol):
    """A final migration, as the store keeps it."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def from_version_id(self) -> uuid.UUID: ...
    @property
    def to_version_id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...


class Graph:
    """A machine's migrations as a directed graph of its versions. Between two versions the
    newest migration counts: deploying a fixed migration replaces a broken one. A version can
    move back only through a migration written that way (from the newer to the older)."""

    def __init__(self, edges: Iterable[Edge]):
        newest: dict[tuple[uuid.UUID, uuid.UUID], Edge] = {}
        for edge in sorted(edges, key=lambda e: (e.created_at, e.id)):
            newest[(edge.from_version_id, edge.to_version_id)] = edge
        self._out: dict[uuid.UUID, list[Edge]] = {}
        for (source, _target), edge in newest.items():
            self._out.setdefault(source, []).append(edge)

    def path(self, start: uuid.UUID, goal: uuid.UUID) -> list[Edge] | None:
        """The fewest migrations leading from `start` to `goal` (breadth first; among paths
        as short, the one through the oldest migrations first); [] if they are the same
        version, None if no path exists."""
        came: dict[uuid.UUID, Edge | None] = {start: None}
        queue = deque([start])
        while queue and goal not in came:
            version = queue.popleft()
            for edge in self._out.get(version, []):
                if edge.to_version_id not in came:
                    came[edge.to_version_id] = edge
                    queue.append(edge.to_version_id)
        if goal not in came:
            return None
        path: list[Edge] = []
        step = came[goal]
        while step is not None:
            path.append(step)
            step = came[step.from_version_id]
        return path[::-1]


# --- migration bundles in the sandbox ----------------------------------------------------


def load_migration(runtime: Runtime, source: str) -> LoadedVersion:
    """A migration bundle loaded in a VM under the same limits as a machine's, snapshotted with
    its driver; BundleError naming what is wrong (a syntax error, an import the sandbox does
    not have, a throwing top level, a missing export). Its VMs come from the returned pool."""
    harness = HARNESS.read_text()
    loaded, shape = runtime.load_module(source, name="migration", harness=harness)
    for name in EXPORTS:
        if shape[name] != "function":
            raise BundleError(
                f"a migration must export a function named {name} (found {shape[name]}; it "
                f"exports {', '.join(shape['exports']) or 'nothing'})", parameter="code")
    return loaded


# --- one upgrade ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One migration of an upgrade's path, and the version it leads to, both loaded."""

    migration_id: uuid.UUID
    migration: LoadedVersion
    version_id: uuid.UUID
    version: LoadedVersion


@dataclass(frozen=True)
class PendingTimer:
    send_id: str
    event_type: str


@dataclass(frozen=True)
class DroppedTimer:
    send_id: str
    reason: str


@dataclass(frozen=True)
class Upgraded:
    """The state an upgrade leads to, as the last version's machine made it."""

    state_json: str
    view: PublicState
    context: dict[str, Any]
    dropped: list[DroppedTimer]   # pending timers the new state cannot take
    logs: list[LogLine]           # the migrations' console output


def upgrade(runtime: Runtime, *, start: LoadedVersion, hops: Sequence[Hop], state_json: str,
            event: dict[str, Any], timers: Sequence[PendingTimer] = ()) -> Upgraded:
    """`state_json` (persisted by the version `start`) moved along `hops`; `event` is the
    upgrade's, recorded as the new state's. UpgradeFailedError, with the migrations' logs and
    the reason, if a migration throws, runs out of time or memory, or leads to states the next
    version does not have."""
    if not hops:
        raise ValueError("an upgrade needs at least one migration")
    calls = _Calls(runtime)
    leaves = calls.run(start, {"op": "upgradeLeaves", "state": state_json}, "reading the state")
    context = json.loads(state_json).get("context") or {}
    built: dict[str, Any] = {}
    for n, hop in enumerate(hops, 1):
        where = f"migration {hop.migration_id} (step {n} of {len(hops)})"
        mapped = calls.run(hop.migration, {"op": "upgrade", **leaves, "context": context}, where)
        context = mapped["context"]
        build = {"op": "upgradeBuild", "current": mapped["current"], "history": mapped["history"],
                 "context": context, "event": event, "timers": []}
        if n == len(hops):
            build["timers"] = [{"id": t.send_id, "type": t.event_type} for t in timers]
        built = calls.run(hop.version, build, f"{where}, building its state in version "
                          f"{hop.version_id}")
        leaves = built["leaves"]
    state_json = json.dumps(built["state"], separators=(",", ":"))
    calls.check_size(context)
    view = built["view"]
    return Upgraded(
        state_json=state_json,
        view=PublicState(view["value"], view["tags"], view["done"], view.get("publicContext")),
        context=context,
        dropped=[DroppedTimer(d["id"], d["reason"]) for d in built["drop"]],
        logs=calls.logs,
    )


class _Calls:
    """The upgrade's calls into VMs, each failure turned into UpgradeFailedError with the
    console output gathered so far."""

    def __init__(self, runtime: Runtime):
        self._runtime = runtime
        self.logs: list[LogLine] = []

    def run(self, loaded: LoadedVersion, args: dict[str, Any], where: str) -> dict[str, Any]:
        taken = loaded.vms.acquire()
        step = Step(taken.vm, self._runtime.limits, self._runtime.clock, self._runtime.fetcher)
        try:
            reply = step.call({**args, "now": self._runtime.clock.now_ms(),
                               "seed": secrets.token_hex(32)})
        except BackstateError as exc:
            loaded.vms.discard(taken)
            self.logs.extend(step.logs)
            raise self.failed(f"{where}: {exc.message}") from exc
        loaded.vms.release(taken)
        self.logs.extend(_log_line(line) for line in reply.pop("logs", []))
        return reply

    def check_size(self, context: dict[str, Any]) -> None:
        limit = self._runtime.limits.context_bytes
        if len(json.dumps(context, separators=(",", ":"))) > limit:
            raise self.failed(f"the upgraded context is over the {limit} byte limit")

    def failed(self, message: str) -> UpgradeFailedError:
        line = LogLine(self._runtime.clock.now_ms(), "stderr", f"[backstate] {message}")
        return UpgradeFailedError(message, logs=[*self.logs, line])


def _log_line(line: dict[str, Any]) -> LogLine:
    stream: Literal["stdout", "stderr"] = "stderr" if line.get("stream") == "stderr" else "stdout"
    return LogLine(int(line.get("ts") or 0), stream, str(line.get("text", "")))
