"""Durable timers in a server process: the scheduler (runtime/scheduler.py) wired to this
database, delivering through `InstanceService.deliver_timer`."""

from __future__ import annotations

from api.services.instances import InstanceService
from api.services.stepping import Stepper
from api.settings import Settings
from runtime.clock import Clock
from runtime.scheduler import RetryPolicy, Scheduler
from runtime.store import Database
from runtime.store import timers as timer_store
from runtime.store.timers import Claimed


class TimerTable:
    """The scheduler's `TimerSource`: the claim protocol, run off the event loop."""

    def __init__(self, db: Database, stepper: Stepper, *, claim_ms: int):
        self._db = db
        self._stepper = stepper
        self._claim_ms = claim_ms

    async def earliest_due(self) -> int | None:
        return await self._stepper.db(self._earliest_due)

    async def claim_due(self, now_ms: int, limit: int) -> list[Claimed]:
        return await self._stepper.db(self._claim_due, now_ms, limit)

    async def retry(self, timer: Claimed, due_at_ms: int) -> None:
        await self._stepper.db(self._retry, timer, due_at_ms)

    async def drop(self, timer: Claimed) -> None:
        await self._stepper.db(self._drop, timer)

    def _earliest_due(self) -> int | None:
        with self._db.transaction() as session:
            return timer_store.earliest_due(session)

    def _claim_due(self, now_ms: int, limit: int) -> list[Claimed]:
        with self._db.transaction() as session:
            return timer_store.claim_due(session, now_ms=now_ms, owner=self._stepper.owner,
                                         claim_ms=self._claim_ms, limit=limit)

    def _retry(self, timer: Claimed, due_at_ms: int) -> None:
        with self._db.transaction() as session:
            timer_store.retry(session, timer, due_at_ms=due_at_ms)

    def _drop(self, timer: Claimed) -> None:
        with self._db.transaction() as session:
            timer_store.consume(session, timer)


def build_scheduler(settings: Settings, db: Database, clock: Clock, stepper: Stepper,
                    instances: InstanceService) -> Scheduler:
    # A claim need only cover claim -> instance lease -> first commit, where the timer is
    # consumed (fenced by the claim). If it expires first (the instance was busy) and another
    # process claims the timer, whichever delivery commits first consumes it and the other
    # finds it gone and writes nothing. A crashed process's claims are free again after this.
    table = TimerTable(db, stepper, claim_ms=int(settings.timer_claim_s * 1000))
    scheduler = Scheduler(
        table,
        instances.deliver_timer,
        clock,
        retry=RetryPolicy(attempts=settings.timer_attempts, delay_s=settings.timer_retry_s),
        poll_s=settings.timer_poll_s,
        concurrency=settings.timer_concurrency,
    )
    stepper.on_armed = scheduler.notify
    return scheduler
