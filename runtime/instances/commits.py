"""Committing a step: each macrostep in one short transaction, before any effect it produced.

A step's first commit is where steps differ, so it is an explicit strategy, chosen by how the
step began:

- `Insert`: a creation. The row is inserted with its first state, leased to the step unless
  this is also its last commit; a row that exists already is a ConflictError.
- `CompareAndSet`: a step that read the instance without its lease (`LeaseKeeper.peek`). It
  writes only if `seq` is still the one it read, the instance runs and nobody holds or waits
  for the lease, and takes the lease unless this is its last commit; otherwise it writes
  nothing and raises InstanceChangedError (the step runs again, waiting for the lease).
- `FENCED`: the step holds the lease; the write is fenced by its token. Every commit after a
  step's first is fenced.

A step that delivers due timers (or an outbox entry: a persistent child's creation) consumes
each claimed row in the transaction that commits its event's first macrostep (`consumes`, by
the event's index in the step's batch), fenced by the claim: a timer cancelled, re-armed or
taken by another process meanwhile raises TimerSupersededError and nothing is written. An event
that ran without a transition has its timer consumed after the step (`Runner`).

A step's last commit (`Macrostep.last`) also releases the lease (or never takes it). Every
strategy checks before it writes, so commits of different steps can share a transaction
(`committer.py`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.clock import Clock
from runtime.errors import ConflictError, TimerSupersededError
from runtime.instances.committer import GroupCommitter
from runtime.instances.lanes import leave_lane
from runtime.instances.leases import LeaseKeeper
from runtime.results import InstanceState, Macrostep
from runtime.store import commits as rows
from runtime.store.clock import to_datetime
from runtime.store.leases import Lease
from runtime.store.prepared import RawTransaction
from runtime.store.timers import Claimed


@dataclass(frozen=True)
class Write:
    """One macrostep to write, with what any strategy may need to take the lease."""

    lease: Lease
    seq: int
    step: Macrostep
    ts: int
    now_ms: int
    owner: str
    lease_expires_at: int


class Strategy(Protocol):
    @property
    def claims(self) -> bool:
        """Whether the write takes the lease (unless it is the step's last)."""
        ...

    def write(self, tx: RawTransaction, w: Write) -> rows.Committed: ...


class _Fenced:
    claims = False

    def write(self, tx: RawTransaction, w: Write) -> rows.Committed:
        return rows.commit(tx, lease=w.lease, seq=w.seq, step=w.step, ts=w.ts,
                           now=to_datetime(w.ts))


FENCED = _Fenced()


class CompareAndSet:
    claims = True

    def write(self, tx: RawTransaction, w: Write) -> rows.Committed:
        return rows.commit_unleased(
            tx, lease=w.lease, owner=w.owner, now_ms=w.now_ms,
            lease_expires_at=w.lease_expires_at, seq=w.seq, step=w.step, ts=w.ts,
            now=to_datetime(w.ts),
        )  # fmt: skip


@dataclass(frozen=True)
class Insert:
    machine_id: uuid.UUID
    slug: str
    version_id: uuid.UUID
    parent: dict[str, Any] | None = None   # a persistent child's parent (store/models.py)
    claims = True

    def write(self, tx: RawTransaction, w: Write) -> rows.Committed:
        return rows.insert_first(
            tx, lease=w.lease, owner=w.owner, lease_expires_at=w.lease_expires_at,
            machine_id=self.machine_id, slug=self.slug, version_id=self.version_id, step=w.step,
            ts=w.ts, now=to_datetime(w.ts), parent=self.parent,
        )  # fmt: skip


@dataclass(frozen=True)
class Position:
    """Where an instance stands: its last committed sequence number, `ts` and view."""

    seq: int
    ts: int
    view: dict[str, Any] | None


Committed = Callable[[Macrostep, rows.Committed], None]


class StepCommits:
    """The runtime's `on_commit` hook for one step (called on the step's thread, in order)."""

    def __init__(self, committer: GroupCommitter, clock: Clock, keeper: LeaseKeeper,
                 lease: Lease, *, first: Strategy, at: Position, committed: Committed,
                 consumes: Mapping[int, Claimed] | None = None):
        self._committer = committer
        self._consumes = dict(consumes or {})   # event index -> its claimed timer, until consumed
        self._clock = clock
        self._keeper = keeper
        self._lease = lease
        self._first = first
        self._start = self._at = at
        self._committed = committed
        self.count = 0
        self._states: list[InstanceState] = []   # after each committed macrostep

    def __call__(self, steps: list[Macrostep]) -> None:
        """Write `steps` (one reply's macrosteps) in one transaction, the first by the step's
        first-commit strategy if the step committed nothing yet."""
        first = self._first if self.count == 0 else FENCED
        leave_lane()  # waiting for the disk needs no CPU: let another step run meanwhile
        due = {n: self._consumes[n] for n in dict.fromkeys(step.delivery for step in steps)
               if n in self._consumes} if self._consumes else {}
        written = self._committer.commit(
            functools.partial(self._write, first, steps, list(due.values())))
        for n in due:
            del self._consumes[n]
        for step, done in zip(steps, written, strict=True):
            self._at = Position(done.seq, done.ts, done.view)
            self.count += 1
            self._states.append(InstanceState(done.ts, done.view))
            self._committed(step, done)
        if steps[-1].last:  # that commit released the lease (or never took it)
            self._keeper.forget(self._lease)
        elif first.claims:  # that commit took it
            self._keeper.hold(self._lease)

    def _write(self, first: Strategy, steps: list[Macrostep], timers: list[Claimed],
               tx: RawTransaction) -> list[rows.Committed]:
        for timer in timers:  # checked before anything is written (see committer.py)
            if not rows.hold_timer(tx, timer.id, timer.claim):
                raise TimerSupersededError(
                    f"timer {timer.send_id!r} was cancelled, re-armed or delivered meanwhile")
        now_ms, at = self._clock.now_ms(), self._at
        written = []
        for n, step in enumerate(steps):
            write = Write(
                lease=self._lease, seq=at.seq + 1, step=step,
                ts=max(now_ms, at.ts + 1),  # strictly increasing, even if the clock is not
                now_ms=now_ms, owner=self._keeper.owner, lease_expires_at=self._keeper.expiry(),
            )  # fmt: skip
            done = (first if n == 0 else FENCED).write(tx, write)
            at = Position(done.seq, done.ts, done.view)
            written.append(done)
        for timer in timers:
            rows.consume_timer(tx, timer.id, timer.claim)
        return written

    def unconsumed(self, indices: Iterable[int]) -> list[Claimed]:
        """The claimed timers of these events that no commit consumed (they took no
        transition)."""
        return [self._consumes[n] for n in indices if n in self._consumes]

    @property
    def instance_id(self) -> uuid.UUID:
        return self._lease.instance_id

    def state(self, after: int | None = None) -> InstanceState:
        """The instance's state after the step's `after` first commits (default: all of
        them; 0: as the step found it)."""
        if after is None:
            after = self.count
        if after > 0:
            return self._states[after - 1]
        if self._start.view is None:  # a creation that committed nothing: cannot happen
            raise ConflictError("the step committed no state", code="invalid-state")
        return InstanceState(self._start.ts, self._start.view)
