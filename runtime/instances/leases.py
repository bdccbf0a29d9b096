"""This process's side of the instance leases: who we are, the leases we hold, and how a step
gets one.

The lease itself lives on the instance row (`runtime/store/leases.py`). Taking, renewing and
releasing it are not synced to disk even on a durable database: a power loss that undoes one
only makes a lease look free or expired sooner, and every commit is fenced anyway. A step either
reads a free instance without taking it (`peek`; its first commit claims it, see `commits.py`)
or waits in line for it (`acquire`). While a step holds a lease, one task per process renews
every lease it holds every ttl/3; the step's last commit releases it in the same transaction,
and `holding` releases whatever a step still holds when it ends.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runtime.clock import Clock
from runtime.errors import ConflictError
from runtime.store import Database
from runtime.store import leases as lease_rows
from runtime.store.leases import Current, Lease, Target


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseKeeper:
    def __init__(self, db: Database, clock: Clock, *, ttl_s: float, wait_s: float):
        self._db = db
        self._clock = clock
        self.ttl_ms = int(ttl_s * 1000)
        self._wait_s = wait_s
        self.owner = process_owner()
        self._held: dict[str, Lease] = {}  # by token, for the renewer
        self._lock = threading.Lock()
        self._renewer: asyncio.Task[None] | None = None

    def expiry(self) -> int:
        """When a lease taken now expires, epoch ms."""
        return self._clock.now_ms() + self.ttl_ms

    # --- getting a lease (on a step thread) ----------------------------------------------

    def peek(self, target: Target) -> Current | None:
        """`target` as it is now if its lease is free and nobody waits for it (no write)."""
        with self._db.raw_read() as tx:
            return lease_rows.peek(tx, target, owner=self.owner, now_ms=self._clock.now_ms())

    def acquire(self, target: Target) -> tuple[Lease, Current]:
        """Wait in line for `target`'s lease; the lease and the row as its last holder left
        it. ConflictError after the configured wait."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._wait_s
        delay = 0.002
        while (current := self._try_take(target, token)) is None:
            if time.monotonic() > deadline:
                raise ConflictError(
                    "the instance is busy with another step; try again", code="instance-busy"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.01)  # the lease changes hands every few ms under load
        return Lease(current.id, token), current

    def _try_take(self, target: Target, token: str) -> Current | None:
        # One statement takes the lease and reads the row: a read before taking it could miss
        # the previous holder's last commit.
        with self._db.raw(autocommit=True, synced=False) as tx:
            return lease_rows.take(
                tx, target, owner=self.owner, token=token, now_ms=self._clock.now_ms(),
                ttl_ms=self.ttl_ms,
            )  # fmt: skip

    # --- holding it -------------------------------------------------------------------------

    @contextmanager
    def holding(self, lease: Lease) -> Iterator[None]:
        """Renew `lease` while the block runs if it is claimed already (else the step's first
        commit claims it and calls `hold`), and release it after, unless a commit did."""
        if lease.claimed:
            self.hold(lease)
        try:
            yield
        finally:
            if self.forget(lease):
                with self._db.raw(autocommit=True, synced=False) as tx:
                    lease_rows.release(tx, lease)

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[lease.token] = lease

    def forget(self, lease: Lease) -> bool:
        """Stop renewing `lease`; whether it was still held."""
        with self._lock:
            return self._held.pop(lease.token, None) is not None

    # --- renewing (on the event loop) ------------------------------------------------------

    def keep_renewing(self) -> None:
        """Start this process's renewer on the running loop, if it is not running there."""
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            with self._lock:
                held = list(self._held.values())
            if held:
                await asyncio.to_thread(self._renew, held)

    def _renew(self, held: list[Lease]) -> None:
        # A lost lease needs no action here: its step's next fenced commit will be refused.
        with self._db.raw(synced=False) as tx:
            lease_rows.renew(tx, held, now_ms=self._clock.now_ms(), ttl_ms=self.ttl_ms)
