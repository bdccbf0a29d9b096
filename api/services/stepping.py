"""Running one step of one instance, serialized and durably committed.

Design (why it looks like this):
- A step can run for the whole settle window (90 s, waiting on fetches), so no DB transaction
  may stay open during it: SQLite would block every other writer. Serialization therefore
  comes from two locks held *around* the step instead of a transaction:
  1. a per-process FIFO `asyncio.Lock` per instance (arrival order within a process, and no
     DB polling between steps of one process);
  2. a DB lease on the instance row (compare-and-set with an expiry, renewed every ttl/3
     while the step runs) that serializes steps across processes.
- Each macrostep commits (state + transition row + timer changes) in one short transaction
  from the runtime's `on_commit` hook, before any of its effects run. The commit's UPDATE is
  fenced by the lease token: if the lease was lost, nothing is written and the step aborts.
- Steps block (wasm), so they run on a dedicated thread limiter, never on the event loop; a
  machine that spins for its whole window only occupies one of those threads.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from runtime.clock import Clock
from runtime.errors import ConflictError
from runtime.results import Macrostep
from runtime.store import Database, leases
from runtime.store import instances as instance_store
from runtime.store.clock import to_datetime
from runtime.store.models import Instance

T = TypeVar("T")
# Finds an instance's id in a transaction (raising NotFoundError if there is none).
Finder = Callable[[Session], uuid.UUID]


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
        lease_ttl_s: float,
        lease_wait_s: float,
    ):
        self._db = db
        self._clock = clock
        self._limiter = anyio.CapacityLimiter(step_threads)
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._wait_s = lease_wait_s
        self.owner = process_owner()
        # Called (from a step thread) after a commit armed timers: the scheduler's wake-up.
        self.on_armed: Callable[[], None] | None = None

    async def run_step(self, fn: Callable[[], T]) -> T:
        """Run blocking runtime work on the step threads."""
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args))

    # --- leases -------------------------------------------------------------------------

    @asynccontextmanager
    async def leased(self, find: Finder) -> AsyncIterator[tuple[instance_store.Lease, Instance]]:
        """Hold the DB lease of the instance `find` names (waiting for it), kept renewed; with
        the instance as it is now that nobody else can change it."""
        lease, instance = await self._acquire(find)
        async with self._renewing(lease):
            yield lease, instance

    @asynccontextmanager
    async def new_lease(self) -> AsyncIterator[instance_store.Lease]:
        """A lease for an instance the step is about to create (its first commit inserts the
        row already leased)."""
        lease = instance_store.Lease(uuid.uuid4(), secrets.token_hex(16))
        async with self._renewing(lease):
            yield lease

    def lease_expiry(self) -> int:
        return self._clock.now_ms() + self._ttl_ms

    async def _acquire(self, find: Finder) -> tuple[instance_store.Lease, Instance]:
        token = secrets.token_hex(16)
        deadline = anyio.current_time() + self._wait_s
        delay = 0.002
        while (instance := await self.db(self._try_acquire, find, token)) is None:
            if anyio.current_time() > deadline:
                raise ConflictError(
                    "the instance is busy with another step; try again", code="instance-busy"
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)  # well under the waiter claim's 1 s
        return instance_store.Lease(instance.id, token), instance

    def _try_acquire(self, find: Finder, token: str) -> Instance | None:
        """One transaction: find the instance, take the lease, and read the row again after
        taking it (a read before could miss the previous holder's last commit)."""
        with self._db.transaction() as session:
            instance_id = find(session)
            taken = leases.try_acquire(
                session,
                instance_id,
                owner=self.owner,
                token=token,
                now_ms=self._clock.now_ms(),
                ttl_ms=self._ttl_ms,
            )
            return instance_store.fresh(session, instance_id) if taken else None

    @asynccontextmanager
    async def _renewing(self, lease: instance_store.Lease) -> AsyncIterator[None]:
        task = asyncio.create_task(self._renew_forever(lease))
        try:
            yield
        finally:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await self.db(self._release, lease)

    async def _renew_forever(self, lease: instance_store.Lease) -> None:
        while True:
            await anyio.sleep(self._ttl_ms / 3000)
            await self.db(self._renew, lease)

    def _renew(self, lease: instance_store.Lease) -> None:
        # A failed renewal needs no action here: the fenced commit will refuse the write.
        with self._db.transaction() as session:
            leases.renew(
                session,
                lease.instance_id,
                token=lease.token,
                now_ms=self._clock.now_ms(),
                ttl_ms=self._ttl_ms,
            )

    def _release(self, lease: instance_store.Lease) -> None:
        with self._db.transaction() as session:
            leases.release(session, lease.instance_id, token=lease.token)

    # --- commits ------------------------------------------------------------------------

    def commit_hook(
        self,
        lease: instance_store.Lease,
        tracker: Tracker,
        first: Callable[[Macrostep, int], instance_store.Committed] | None = None,
        *,
        with_first: Callable[[Session], None] | None = None,
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
        lease: instance_store.Lease,
        tracker: Tracker,
        step: Macrostep,
        first: Callable[[Macrostep, int], instance_store.Committed] | None,
        with_first: Callable[[Session], None] | None,
    ) -> None:
        ts = max(self._clock.now_ms(), tracker.ts + 1)
        if first is not None and tracker.committed == 0:
            done = first(step, ts)
        else:
            with self._db.transaction() as session:
                if with_first is not None and tracker.committed == 0:
                    with_first(session)
                done = instance_store.commit(
                    session,
                    lease=lease,
                    seq=tracker.seq + 1,
                    step=step,
                    ts=ts,
                    now=to_datetime(ts),
                )
        tracker.seq, tracker.ts, tracker.view = done.seq, done.ts, done.view
        tracker.committed += 1

    def save_cut_off(self, lease: instance_store.Lease, cut_off: list[str]) -> None:
        with self._db.transaction() as session:
            instance_store.save_cut_off(session, lease, cut_off)
