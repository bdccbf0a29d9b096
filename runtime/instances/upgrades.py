"""Moving an instance to its desired version: recording the wish, and applying it in a step.

An instance runs the version it was created with until `set_desired` names another one, which
needs a path of migrations to it (NoMigrationPathError otherwise; naming the version it runs
cancels a pending upgrade). The upgrade is applied by the next event delivered while the
instance is settled (a client event or a timer), in that event's step, under its lease:

1. the shortest path of migrations through the machine's migration graph (runtime/migrations.py,
   the newest migration between two versions counts) is found, its migrations and versions
   loaded from this process's caches;
2. the migrations run in the sandbox and the new version's machine builds the state they lead
   to; `after` timers of states the upgrade left are to be dropped;
3. the event runs on the new version from that state. The upgrade's `statebacked.upgrade`
   transition — with the version switch and the dropped timers — commits in the same
   transaction as the event's first macrosteps, as the step's first commit (the strategy the
   step began with: compare-and-set, fenced, consuming the delivered timer). An event that
   fails before its first commit (the new version's `allowWrite` refuses, a guard throws)
   therefore writes nothing, the upgrade included; an event the new version ignores still
   commits the upgrade; a timer whose `after` transition the upgrade dropped is not delivered.

A migration that throws, runs out of time or memory, or leads to states the new version does
not have raises UpgradeFailedError (409 `upgrade-failed`) before anything is written: the
instance stays on its version and state, its desired version stays set, and the next event
tries again (with a fixed migration, once one is deployed: the newest one counts). An instance
whose services were cut off is not settled: that step delivers their `error.platform` events on
the old version, and the upgrade waits for the next one.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from typing import Any

from runtime.engine import LoadedVersion, Runtime
from runtime.errors import (
    BundleError,
    ConflictError,
    NoMigrationPathError,
    NotFoundError,
    UpgradeFailedError,
)
from runtime.instances.versions import Compiled, Versions, bundle_source
from runtime.migrations import Graph, Hop, PendingTimer, Upgraded, load_migration, upgrade
from runtime.results import CommitHook, LogLine, Macrostep, StepResult
from runtime.store import Database
from runtime.store import instances as instance_rows
from runtime.store import machines as machine_rows
from runtime.store import upgrades as upgrade_rows
from runtime.store import version_migrations as migration_rows
from runtime.store import versions as version_rows
from runtime.store.leases import Current

log = logging.getLogger("backstate.upgrades")

UPGRADE_EVENT = "statebacked.upgrade"
# The event on the new version: (the version, the upgraded state's JSON, the commit hook).
RunEvent = Callable[[LoadedVersion, str, CommitHook], StepResult]


class Upgrades:
    def __init__(self, db: Database, runtime: Runtime, versions: Versions, *, cached: int):
        self._db = db
        self._runtime = runtime
        self._versions = versions
        self._migrations = _Migrations(db, runtime, size=cached)

    # --- the wish (administration) -------------------------------------------------------

    def set_desired(self, org_id: uuid.UUID, machine: str, instance: str,
                    version_id: uuid.UUID) -> None:
        """Upgrade the instance to `version_id` at its next settled event; NoMigrationPathError
        if no migrations lead there from its version. Blocking."""
        for _attempt in range(3):  # an upgrade may switch its version meanwhile: look again
            with self._db.read() as session:
                found = machine_rows.get(session, org_id, machine)
                row = instance_rows.get(session, found, instance)
                try:
                    version_rows.get_final(session, found, version_id)
                except NotFoundError as exc:
                    raise NotFoundError(exc.message, parameter="targetMachineVersionId") from exc
                graph = Graph(migration_rows.final_edges(session, found.id))
            desired = None if version_id == row.version_id else version_id
            if desired is not None and graph.path(row.version_id, desired) is None:
                raise NoMigrationPathError(
                    "no migrations lead from the instance's version to the target version: "
                    "create one (smply migrations create) or a chain of them",
                    parameter="targetMachineVersionId")
            with self._db.transaction() as session:
                if upgrade_rows.set_desired(session, row.id, current_version_id=row.version_id,
                                            desired_version_id=desired):
                    return
        raise ConflictError("the instance's version kept changing; try again",
                            code="instance-busy")

    # --- applying it (inside a step, on its thread) --------------------------------------

    @staticmethod
    def pending(current: Current) -> bool:
        """Whether the step must upgrade the instance before its event."""
        desired = current.desired_version_id
        return desired is not None and desired != current.version_id and not current.cut_off

    def send(self, current: Current, commits: CommitHook, event: dict[str, Any], *,
             trusted: bool, run: RunEvent) -> StepResult:
        """Upgrade the instance `current`, then run its event on the new version (`run`),
        committing the upgrade through `commits` just before the event's first macrostep."""
        assert current.desired_version_id is not None
        try:
            hops, timers = self._plan(current, current.desired_version_id)
            event_of_upgrade = _event(current.version_id, hops)
            upgraded = upgrade(self._runtime, start=self._versions.get(current.version_id),
                               hops=hops, state_json=current.state_json,
                               event=event_of_upgrade, timers=timers)
        except UpgradeFailedError as exc:
            # The instance's logs (`GET /logs`) get them too, through the caller's StepLogs.
            output = "".join(f"\n  {line.stream}: {line.text}" for line in exc.logs)
            log.warning("instance %s stays on version %s, its upgrade to %s failed: %s%s",
                        current.id, current.version_id, current.desired_version_id,
                        exc.message, output)
            raise UpgradeFailedError(
                f"the instance's upgrade to its desired version failed, so it stays on its "
                f"version and the event was not delivered: {exc.message}", logs=exc.logs,
            ) from exc
        step = self._transition(event_of_upgrade, hops, upgraded)
        swallowed = {t.event_type for t in timers if t.send_id in step.cancels}
        if trusted and event.get("type") in swallowed:
            # The timer being delivered is one of those dropped: only the upgrade commits.
            commits([dataclasses.replace(step, last=True)])
            _report(current, hops, upgraded)
            return StepResult([step], [], list(step.logs))
        hook = _UpgradeFirst(commits, step)
        try:
            result = run(hops[-1].version, upgraded.state_json, hook)
            if not hook.committed:  # the new version took no transition: the upgrade holds
                commits([dataclasses.replace(step, last=True)])
                hook.committed = True
        finally:
            if hook.committed:
                _report(current, hops, upgraded)
        return StepResult([step, *result.macrosteps], result.cut_off,
                          [*step.logs, *result.logs], result.error)

    def _plan(self, current: Current,
              desired: uuid.UUID) -> tuple[list[Hop], list[PendingTimer]]:
        with self._db.read() as session:
            machine_id = version_rows.machine_of(session, current.version_id)
            graph = Graph(migration_rows.final_edges(session, machine_id))
            timers = upgrade_rows.pending_timers(session, current.id)
        path = graph.path(current.version_id, desired)
        if not path:
            message = (f"the desired version {desired} cannot be reached: no migrations lead "
                       f"there from the instance's version {current.version_id}")
            line = LogLine(self._runtime.clock.now_ms(), "stderr", f"[backstate] {message}")
            raise UpgradeFailedError(message, logs=[line])
        hops = [Hop(edge.id, self._migrations.get(edge.id), edge.to_version_id,
                    self._versions.get(edge.to_version_id)) for edge in path]
        pending = [PendingTimer(send_id, str(event.get("type"))) for send_id, event in timers]
        return hops, pending

    def _transition(self, event: dict[str, Any], hops: list[Hop],
                    upgraded: Upgraded) -> Macrostep:
        now = self._runtime.clock.now_ms()
        notes = [f"the upgrade dropped the timer {d.send_id!r}: {d.reason}"
                 for d in upgraded.dropped]
        if upgraded.view.done:
            notes.append("the upgrade reached a final state: the instance's timers are dropped")
        logs = [*upgraded.logs, *(LogLine(now, "stderr", f"[backstate] {n}") for n in notes)]
        return Macrostep(
            event=event, state_json=upgraded.state_json, view=upgraded.view,
            context=upgraded.context, cancels=[d.send_id for d in upgraded.dropped], logs=logs,
            # A machine in its top-level final state stops, and xstate drops its timers.
            clear_timers=upgraded.view.done, upgrade_to=hops[-1].version_id,
        )  # fmt: skip


def _report(current: Current, hops: list[Hop], upgraded: Upgraded) -> None:
    """The server's log of a committed upgrade (its lines are also on the macrostep)."""
    log.info("instance %s upgraded from version %s to %s through %d migration(s)",
             current.id, current.version_id, hops[-1].version_id, len(hops))
    for dropped in upgraded.dropped:
        log.warning("instance %s: the upgrade dropped timer %r: %s", current.id,
                    dropped.send_id, dropped.reason)


def _event(from_version_id: uuid.UUID, hops: list[Hop]) -> dict[str, Any]:
    """The upgrade's transition event, as State Backed records it (raw UUIDs)."""
    return {
        "type": UPGRADE_EVENT,
        "migrationPath": [str(hop.migration_id) for hop in hops],
        "fromMachineVersionId": str(from_version_id),
        "toMachineVersionId": str(hops[-1].version_id),
    }


class _UpgradeFirst:
    """The event step's commit hook: the upgrade's transition commits with the event's first
    macrosteps, in the step's first commit, so an event failing before it writes nothing."""

    def __init__(self, commits: CommitHook, upgrade_step: Macrostep):
        self._commits = commits
        self._upgrade = upgrade_step
        self.committed = False

    def __call__(self, steps: list[Macrostep]) -> None:
        if not self.committed:
            steps = [self._upgrade, *steps]
            self.committed = True
        self._commits(steps)


class _Migrations(Compiled):
    """The migrations this process keeps loaded: migration id -> its VMs' snapshot and pool."""

    def __init__(self, db: Database, runtime: Runtime, *, size: int):
        def load(migration_id: uuid.UUID) -> LoadedVersion:
            with db.read() as session:
                gzipped = migration_rows.bundle_of(session, migration_id)
            try:
                return load_migration(runtime, bundle_source(gzipped))
            except BundleError as exc:  # finalized once, so only a changed runtime gets here
                raise UpgradeFailedError(f"migration {migration_id} no longer loads: "
                                         f"{exc.message}") from exc

        super().__init__(load, size=size)
