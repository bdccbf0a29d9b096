"""This process's side of the instance leases: who we are, the leases we hold, and how a step
gets one.

The lease itself lives on the instance row (`runtime/store/leases.py`). Taking, renewing and
releasing it are not synced to disk even on a durable database: a power loss that undoes one
only makes a lease look free or expired sooner, and every commit is fenced anyway. A step either
reads a free instance without taking it (`peek`; its first commit claims it, see `commits.py`)
or waits in line for it (`acquire`). While a step holds a lease, one task per process renews
every lease it holds every ttl/3; the step's last commit releases it in the same transaction,
and `holding` releases whatever a step still holds when it ends.

When renewing fails (the database is unreachable), the renewer tries again at its next turn,
and a lease whose expiry passed meanwhile is given up: another process may have taken it by
then, so this one stops renewing it (once the database is back, renewing it could otherwise
keep an instance whose step died with the outage). Its step's next commit, fenced by the
token, is refused if the lease was taken; correctness never depended on this process knowing.
A renewal that finds a lease no longer ours (released by its step's last commit, or taken over)
forgets it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runtime import metrics
from runtime.clock import Clock
from runtime.errors import ConflictError
from runtime.store import Database
from runtime.store import leases as lease_rows
from runtime.store.leases import Current, Lease, Target

log = logging.getLogger("backstate.leases")


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
        self._expires: dict[str, int] = {}  # by token: when each expires, as last written
        self._lock = threading.Lock()
        self._renewer: asyncio.Task[None] | None = None
        self._failing = False   # renewals fail: said once

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
        current = self._try_take(target, token)
        if current is not None:
            return Lease(current.id, token), current
        metrics.LEASE_WAITS.inc()
        started = time.monotonic()
        deadline = started + self._wait_s
        delay = 0.002
        while (current := self._try_take(target, token)) is None:
            if time.monotonic() > deadline:
                metrics.LEASE_TIMEOUTS.inc()
                raise ConflictError(
                    "the instance is busy with another step; try again", code="instance-busy"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.01)  # the lease changes hands every few ms under load
        metrics.LEASE_WAIT_SECONDS.observe(time.monotonic() - started)
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
        expires = self.expiry()   # no earlier than the expiry its taking wrote
        with self._lock:
            if self._held.setdefault(lease.token, lease) is lease:
                metrics.LEASES_HELD.inc()
            self._expires[lease.token] = expires

    def forget(self, lease: Lease) -> bool:
        """Stop renewing `lease`; whether it was still held."""
        with self._lock:
            held = self._held.pop(lease.token, None) is not None
            self._expires.pop(lease.token, None)
        if held:
            metrics.LEASES_HELD.dec()
        return held

    @property
    def held(self) -> int:
        """How many leases this process holds (as far as it knows)."""
        return len(self._held)

    # --- renewing (on the event loop) ------------------------------------------------------

    def keep_renewing(self) -> None:
        """Start this process's renewer on the running loop, if it is not running there."""
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()

    async def _renew_forever(self) -> None:
        renewal: asyncio.Task[None] | None = None
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            if renewal is not None and not renewal.done():
                self._give_up_expired()   # the last renewal still waits for the database
                continue
            with self._lock:
                held = list(self._held.values())
            if held:
                renewal = asyncio.get_running_loop().create_task(self._renew_once(held))

    async def _renew_once(self, held: list[Lease]) -> None:
        try:
            await asyncio.to_thread(self._renew, held)
        except Exception as exc:   # the database is unreachable, most likely
            metrics.LEASE_RENEWAL_FAILURES.inc()
            if not self._failing:
                log.warning("renewing %d lease(s) failed; trying again every %.1f s: %s",
                            len(held), self.ttl_ms / 3000, exc)
            self._failing = True
            self._give_up_expired()
        else:
            self._failing = False

    def _renew(self, held: list[Lease]) -> None:
        now = self._clock.now_ms()
        with self._db.raw(synced=False) as tx:
            ours = {lease.token for lease in
                    lease_rows.renew(tx, held, now_ms=now, ttl_ms=self.ttl_ms)}
        for lease in held:
            if lease.token not in ours:   # released by its last commit, or taken over
                self.forget(lease)
                continue
            with self._lock:
                if lease.token in self._expires:
                    self._expires[lease.token] = now + self.ttl_ms

    def _give_up_expired(self) -> None:
        now = self._clock.now_ms()
        with self._lock:
            expired = [self._held[token] for token, at in self._expires.items() if at <= now]
        for lease in expired:
            if self.forget(lease):
                metrics.LEASES_LOST.inc()
                log.warning("gave up the lease of instance %s: it expired before a renewal "
                            "succeeded, and another process may hold it now", lease.instance_id)
