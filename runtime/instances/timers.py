"""The scheduler's side of the timer table (`runtime.scheduler.TimerSource`): the claim
protocol of `runtime/store/timers.py`, run off the event loop on the given threads."""

from __future__ import annotations

import functools

from runtime.instances.threads import Threads
from runtime.store import Database
from runtime.store import timers as timer_rows
from runtime.store.timers import Claimed, Claims


class TimerTable:
    def __init__(self, db: Database, threads: Threads, *, owner: str, claim_ms: int):
        self._db = db
        self._threads = threads
        self._owner = owner
        # A claim need only cover claim -> instance lease -> first commit, where the timer is
        # consumed (fenced by the claim). If it expires first (the instance was busy) and
        # another process claims the timer, whichever delivery commits first consumes it and
        # the other finds it gone and writes nothing. A crashed process's claims are free
        # again after this.
        self._claim_ms = claim_ms

    async def claim_due(self, now_ms: int, limit: int) -> Claims:
        return await self._threads.run(functools.partial(self._claim_due, now_ms, limit))

    async def retry(self, timer: Claimed, due_at_ms: int) -> None:
        await self._threads.run(functools.partial(self._retry, timer, due_at_ms))

    async def drop(self, timer: Claimed) -> None:
        await self._threads.run(functools.partial(self._drop, timer))

    def _claim_due(self, now_ms: int, limit: int) -> Claims:
        with self._db.raw(synced=False) as tx:   # see runtime/store/timers.py
            return timer_rows.claim_due(tx, now_ms=now_ms, owner=self._owner,
                                        claim_ms=self._claim_ms, limit=limit)

    def _retry(self, timer: Claimed, due_at_ms: int) -> None:
        with self._db.transaction() as session:
            timer_rows.retry(session, timer, due_at_ms=due_at_ms)

    def _drop(self, timer: Claimed) -> None:
        with self._db.transaction() as session:
            timer_rows.consume(session, timer)
