"""One step of one instance, serialized with every other step of it and durably committed.

Design (why it looks like this):
- A step can run for the whole settle window (90 s, waiting on fetches), so no transaction may
  stay open during it: SQLite would block every other writer. Serialization comes from two
  locks held *around* the step instead: the per-process FIFO lock of the instance (`locks.py`,
  taken by the caller on the event loop) and the lease on its row (`leases.py`), which
  serializes steps across processes.
- Most steps never write the lease: the instance is read without it when nobody holds or waits
  for it, and the step's first commit is a compare-and-set on the sequence number it read
  (`commits.CompareAndSet`), taking the lease only if more commits follow. A plain event is
  then one write transaction. A step whose first commit finds the instance changed wrote
  nothing and runs again, waiting for the lease first: nothing of a step reaches the world
  before its first commit (fetches wait for commits), so running it twice is invisible.
- Everything here runs on the calling thread, a step thread: the lease, the row, the step and
  its commits make one trip from the event loop, which costs more than a statement.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from runtime.clock import Clock
from runtime.errors import ConflictError, InstanceChangedError
from runtime.instances.commits import (
    FENCED,
    CompareAndSet,
    Insert,
    Position,
    StepCommits,
    Strategy,
)
from runtime.instances.committer import GroupCommitter
from runtime.instances.feed import Feed, StateCommitted
from runtime.instances.leases import LeaseKeeper
from runtime.results import InstanceState, Macrostep, StepResult
from runtime.store import Database
from runtime.store import commits as rows
from runtime.store import instances as instance_rows
from runtime.store.leases import Current, Lease, Target
from runtime.store.timers import Claimed

T = TypeVar("T")
# The step itself: runs the machine with `commits` as its `on_commit` hook.
NewBody = Callable[[StepCommits], StepResult]
Body = Callable[[Current, StepCommits], StepResult]
# What the caller is answered with, once the step ended.
Answer = Callable[[StepResult, StepCommits], T]


def final_state(_result: StepResult, commits: StepCommits) -> InstanceState:
    return commits.state()


class Runner:
    def __init__(self, db: Database, clock: Clock, keeper: LeaseKeeper, feed: Feed, *,
                 on_timers_armed: Callable[[], None]):
        self._db = db
        self.committer = GroupCommitter(db)
        self._clock = clock
        self._keeper = keeper
        self._feed = feed
        self._on_timers_armed = on_timers_armed

    def create(self, row: Insert, body: NewBody, *, timer: Claimed | None = None) -> InstanceState:
        """Run a creation: its first commit inserts the row (ConflictError if it exists);
        `timer`: the claimed outbox row of the parent that asked for it, consumed by that
        commit (a persistent child, see outbox.py)."""
        lease = Lease(uuid.uuid4(), secrets.token_hex(16), claimed=False)
        consumes = {} if timer is None else {0: timer}
        commits = self._commits(lease, row, Position(0, 0, None), row.version_id, consumes)
        with self._keeper.holding(lease):
            body(commits)
        return commits.state()

    def existing(self, target: Target, body: Body, *, timers: Sequence[Claimed | None] = (),
                 answer: Answer[T] = final_state) -> T:  # type: ignore[assignment]
        """Run a step of the instance `target`; `timers[n]` is the claimed timer (or outbox
        entry) the step's `n`-th event delivers, if any: its row is consumed by the commit of
        the event's first macrostep. NotFoundError if there is no such instance, ConflictError
        if it is paused, TimerSupersededError if a timer went stale."""
        consumes = {n: timer for n, timer in enumerate(timers) if timer is not None}
        seen = self._keeper.peek(target)
        # A step that starts with services cut off (by a crash or the window) may save the list
        # without committing (`_save_cut_off`): that needs the lease held from the start.
        if seen is not None and not seen.cut_off:
            unclaimed = Lease(seen.id, secrets.token_hex(16), claimed=False)
            try:
                return self._attempt(unclaimed, seen, CompareAndSet(), body, consumes, answer)
            except InstanceChangedError:
                pass  # another step committed since the peek: this time, hold the lease
        lease, current = self._keeper.acquire(target)
        return self._attempt(lease, current, FENCED, body, consumes, answer)

    def _attempt(self, lease: Lease, current: Current, first: Strategy, body: Body,
                 consumes: dict[int, Claimed], answer: Answer[T]) -> T:
        if current.status != instance_rows.RUNNING:
            raise ConflictError(f"instance {current.slug!r} is paused", code="invalid-state")
        at = Position(current.seq, current.ts, current.view)
        commits = self._commits(lease, first, at, current.version_id, consumes)
        with self._keeper.holding(lease):
            result = body(current, commits)
            # Events that ran without a transition: no commit consumed their timers.
            self._consume(commits.unconsumed(_ran(result)))
            self._save_cut_off(lease, result, current.cut_off)
        return answer(result, commits)

    def _commits(self, lease: Lease, first: Strategy, at: Position, version_id: uuid.UUID,
                 consumes: dict[int, Claimed]) -> StepCommits:
        def committed(step: Macrostep, done: rows.Committed) -> None:
            nonlocal version_id
            if step.upgrade_to is not None:  # an upgrade's transition moved the instance
                version_id = step.upgrade_to
            if self._feed.listening:
                state = InstanceState(done.ts, done.view)
                self._feed.publish(StateCommitted(
                    lease.instance_id, version_id, done.seq, state, step.state_json))
            if step.timers:
                self._on_timers_armed()

        return StepCommits(self.committer, self._clock, self._keeper, lease, first=first,
                           at=at, committed=committed, consumes=consumes)

    def _save_cut_off(self, lease: Lease, result: StepResult, before: list[str]) -> None:
        """Each commit stored the services running after it; the step's end may differ (the
        window cut them off, or the step ended early)."""
        stored = list(result.final.running) if result.macrosteps else list(before)
        if result.cut_off != stored:
            with self._db.raw(autocommit=True) as tx:
                rows.save_cut_off(tx, lease, result.cut_off)

    def _consume(self, timers: list[Claimed]) -> None:
        if timers:
            with self._db.raw() as tx:
                for timer in timers:
                    rows.consume_timer(tx, timer.id, timer.claim)


def _ran(result: StepResult) -> list[int]:
    """The events of the step that ran without failing (a single event: it ran, or the step
    would have raised)."""
    if not result.outcomes:
        return [0]
    return [n for n, outcome in enumerate(result.outcomes) if outcome.error is None]
