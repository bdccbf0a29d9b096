"""Running one step of one instance, serialized and durably committed.

Design (why it looks like this):
- A step can run for the whole settle window (90 s, waiting on fetches), so no DB transaction
  may stay open during it: SQLite would block every other writer. Serialization therefore
  comes from two locks held *around* the step instead of a transaction:
  1. a per-process FIFO `asyncio.Lock` per instance (arrival order within a process, and no
     DB polling between steps of one process), taken by the caller;
  2. a DB lease on the instance row (compare-and-set with an expiry) that serializes steps
     across processes. One task per process renews every lease it holds every ttl/3.
- Each macrostep commits (state + transition row + timer changes) in one short transaction
  from the runtime's `on_commit` hook, before any of its effects run. The commit's UPDATE is
  fenced by the lease token: if the lease was lost, nothing is written and the step aborts.
- Most steps never write the lease: the instance is read without it (`leases.peek`, no write
  lock) when nobody holds it, and the step's first commit is a compare-and-set on the sequence
  number read, taking the lease only if more commits follow (`commits.commit_unleased`). An
  event that settles in one macrostep is then one write transaction instead of two. A step
  whose first commit finds the instance changed wrote nothing; it runs again, taking the lease
  first, so it cannot lose twice. Nothing of a step reaches the world before its first commit
  (fetches wait for commits), so running it twice is invisible.
- Steps block (wasm), so they run on a pool of step threads (`threads.py`), never on the loop; a
  machine that spins for its whole window only occupies one of those threads. Steps start a
  few at a time (`lanes.py`): a dozen threads contending for the GIL cost more CPU than the
  steps themselves. Taking the lease
  (and re-reading the instance), the step with its commits, and releasing the lease all run in
  *one* call on that thread: each trip between the event loop and a thread costs more than a
  statement, and a contended lease is waited for there, sleeping (there are many threads).
- The hot path's statements are `Prepared` (runtime/store/prepared.py): SQLAlchemy's SQL, run
  on the DBAPI cursor, because its per-execution machinery cost more CPU than the sandbox.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from api.services.lanes import Lanes
from api.services.threads import Threads
from runtime.clock import Clock
from runtime.errors import ConflictError
from runtime.results import Macrostep
from runtime.store import Database, commits, leases
from runtime.store.clock import to_datetime
from runtime.store.leases import Current, Lease, Target
from runtime.store.prepared import RawTransaction

T = TypeVar("T")
# A step running this long gives its lane back (see lanes.py): an event's step takes a few ms.
LANE_HOLD_S = 0.05
DB_THREADS = 8


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class Tracker:
    """What the commits of one step wrote so far (the step's own view of its instance)."""

    seq: int
    ts: int
    view: dict[str, Any] | None = None
    error: BaseException | None = None
    committed: int = 0

    def wire(self) -> dict[str, Any]:
        assert self.view is not None
        return {"ts": self.ts, **self.view}


class Stepper:
    """Serializes and commits steps; knows nothing of machines beyond `Macrostep`."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        step_threads: int,
        step_lanes: int,
        lease_ttl_s: float,
        lease_wait_s: float,
    ):
        self._db = db
        self._clock = clock
        self._steps = Threads(step_threads, "step")
        self._db_threads = Threads(DB_THREADS, "db")
        self._lanes = Lanes(step_lanes or os.cpu_count() or 1, LANE_HOLD_S)
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._wait_s = lease_wait_s
        self.owner = process_owner()
        # Called (from a step thread) after a commit armed timers: the scheduler's wake-up.
        self.on_armed: Callable[[], None] | None = None
        self._held: dict[str, Lease] = {}  # by token, for the renewer
        self._held_lock = threading.Lock()
        self._renewer: asyncio.Task[None] | None = None

    async def run_step(self, fn: Callable[[], T]) -> T:
        """Run blocking runtime work on the step threads, once it has a lane."""
        async with self._lanes.lane():
            return await self._steps.run(fn)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Short database work (reads, the scheduler's claims), on threads of its own: a
        machine waiting on fetches in every step thread must not hold these up."""
        return await self._db_threads.run(functools.partial(fn, *args))

    def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        self._steps.close()
        self._db_threads.close()

    # --- leases -------------------------------------------------------------------------

    async def leased(self, target: Target, body: Callable[[Lease, Current], T]) -> T:
        """Run `body` on a step thread with the instance `target` as it is now, serialized with
        every other step of it: its commits go through `commit_hook` with the lease `body` is
        given, which they claim or which is held already (waited for there). A held lease is
        renewed while `body` runs and released after it."""
        self._keep_renewing()
        return await self.run_step(functools.partial(self._leased, target, body))

    async def new_lease(self, body: Callable[[Lease], T]) -> T:
        """Run `body` on a step thread holding a lease for an instance it is about to create
        (its first commit inserts the row already leased)."""
        self._keep_renewing()
        lease = Lease(uuid.uuid4(), secrets.token_hex(16))
        return await self.run_step(functools.partial(self._holding, lease, body))

    def lease_expiry(self) -> int:
        return self._clock.now_ms() + self._ttl_ms

    def _leased(self, target: Target, body: Callable[[Lease, Current], T]) -> T:
        seen = self._peek(target)
        # A step that starts with services cut off (by a crash or the window) may save the
        # list without committing (`InstanceService._save_cut_off`): that needs a held lease.
        if seen is not None and not seen.cut_off:
            unclaimed = Lease(seen.id, secrets.token_hex(16), claimed=False)
            try:
                return self._holding(unclaimed, functools.partial(_with, body, seen))
            except commits.Superseded:
                pass  # another step committed since the peek: this time, hold the lease
        lease, current = self._acquire(target)
        return self._holding(lease, functools.partial(_with, body, current))

    def _peek(self, target: Target) -> Current | None:
        with self._db.raw_read() as tx:
            return leases.peek(tx, target, owner=self.owner, now_ms=self._clock.now_ms())

    def _acquire(self, target: Target) -> tuple[Lease, Current]:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._wait_s
        delay = 0.002
        while (current := self._try_acquire(target, token)) is None:
            if time.monotonic() > deadline:
                raise ConflictError(
                    "the instance is busy with another step; try again", code="instance-busy"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)  # well under the waiter claim's 1 s
        return Lease(current.id, token), current

    def _try_acquire(self, target: Target, token: str) -> Current | None:
        """Take the lease and read the row (one statement: a read before taking it could miss
        the previous holder's last commit)."""
        with self._db.raw(autocommit=True) as tx:
            return leases.take(
                tx,
                target,
                owner=self.owner,
                token=token,
                now_ms=self._clock.now_ms(),
                ttl_ms=self._ttl_ms,
            )

    def _holding(self, lease: Lease, body: Callable[[Lease], T]) -> T:
        if lease.claimed:  # else its first commit claims it, if more commits follow
            self._hold(lease)
        try:
            return body(lease)
        finally:
            if self._forget(lease):  # not released by the step's last commit
                self._release(lease)

    def _hold(self, lease: Lease) -> None:
        """Keep renewing `lease` (and release it after the step, unless its last commit did)."""
        with self._held_lock:
            self._held[lease.token] = lease

    def _forget(self, lease: Lease) -> bool:
        """Stop renewing `lease`; whether it was still held."""
        with self._held_lock:
            return self._held.pop(lease.token, None) is not None

    def _release(self, lease: Lease) -> None:
        with self._db.raw(autocommit=True) as tx:
            leases.release(tx, lease)

    def _keep_renewing(self) -> None:
        """Start this process's renewer on the running loop, if it is not running there."""
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            with self._held_lock:
                held = list(self._held.values())
            if held:
                await self.db(self._renew, held)

    def _renew(self, held: list[Lease]) -> None:
        # A lost lease needs no action here: its step's next fenced commit will be refused.
        with self._db.raw() as tx:
            leases.renew(tx, held, now_ms=self._clock.now_ms(), ttl_ms=self._ttl_ms)

    # --- commits ------------------------------------------------------------------------

    def commit_hook(
        self,
        lease: Lease,
        tracker: Tracker,
        first: Callable[[RawTransaction, Macrostep, int], commits.Committed] | None = None,
        *,
        with_first: Callable[[RawTransaction], None] | None = None,
    ) -> Callable[[Macrostep], None]:
        """The runtime's `on_commit`: one short fenced transaction per macrostep. `first`
        writes the first macrostep of a creation (`None` when the instance already exists);
        `with_first` runs inside the first commit's transaction (a timer delivery consumes its
        timer there, so the delivery and its effect on the state commit together or not at
        all)."""

        def hook(step: Macrostep) -> None:
            try:
                self._commit(lease, tracker, step, first, with_first)
            except BaseException as exc:
                tracker.error = exc
                raise
            if step.timers and self.on_armed is not None:
                self.on_armed()

        return hook

    def _commit(
        self,
        lease: Lease,
        tracker: Tracker,
        step: Macrostep,
        first: Callable[[RawTransaction, Macrostep, int], commits.Committed] | None,
        with_first: Callable[[RawTransaction], None] | None,
    ) -> None:
        now_ms = self._clock.now_ms()
        ts = max(now_ms, tracker.ts + 1)
        claiming = tracker.committed == 0 and not lease.claimed
        with self._db.raw() as tx:
            if first is not None and tracker.committed == 0:
                done = first(tx, step, ts)
            else:
                if with_first is not None and tracker.committed == 0:
                    with_first(tx)
                seq, now = tracker.seq + 1, to_datetime(ts)
                if claiming:
                    done = commits.commit_unleased(
                        tx, lease=lease, owner=self.owner, now_ms=now_ms,
                        lease_expires_at=now_ms + self._ttl_ms, seq=seq, step=step, ts=ts,
                        now=now,
                    )  # fmt: skip
                else:
                    done = commits.commit(tx, lease=lease, seq=seq, step=step, ts=ts, now=now)
        tracker.seq, tracker.ts, tracker.view = done.seq, done.ts, done.view
        tracker.committed += 1
        if step.last:  # that commit released the lease
            self._forget(lease)
        elif claiming:  # that commit took it
            self._hold(lease)

    def save_cut_off(self, lease: Lease, cut_off: list[str]) -> None:
        with self._db.raw(autocommit=True) as tx:
            commits.save_cut_off(tx, lease, cut_off)


def _with(body: Callable[[Lease, Current], T], current: Current, lease: Lease) -> T:
    return body(lease, current)
