"""Fires durable timers: one scheduler per server process.

It sleeps until the earliest due time it knows of, and is woken early when a commit in this
process arms an earlier timer (`notify`). Polling the database is only the fallback that finds
timers armed by other processes, or left behind by one that died (their claims expire).

Due timers are claimed in batches, never more than a batch in flight (a claim this process
cannot deliver before it expires would only be delivered twice over), and only once half of the
batch has settled: topping the batch up as each delivery settled made one claim transaction per
delivered timer under load, costing as much as the deliveries themselves, while a timer claimed
behind a full batch would not be delivered any sooner. They are delivered through the caller's
`deliver` coroutine, which runs them through the same serialized per-instance path as client
events. Timers of one instance are delivered in due order by one task per instance, which a
later claim's timers of that instance join (a task of their own could take the instance's lock
between two of the earlier ones): it hands over all those queued at once, in order, so that the
instance's path can run them as one batch; different instances in parallel. Across processes under a
backlog, two processes may each claim some of an instance's due timers and deliver them out of
due order: keeping them in order there is not done yet.

If a delivery fails in a way that may pass (the machine threw, the instance is paused or busy),
the timer is retried up to `RetryPolicy.attempts` times, `RetryPolicy.delay_s` apart, then
dropped and logged. A delivery to an instance that no longer exists drops the timer at once.
A delivery stopped by an unreachable database is neither: nothing of it was committed, and
its claim, left as it is, expires and lets any process (this one too) deliver it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from runtime import metrics
from runtime.clock import Clock
from runtime.errors import (
    ConflictError,
    MachineError,
    NotFoundError,
    RejectedByAuthorizerError,
    UnavailableError,
)
from runtime.store.timers import Claimed, Claims

log = logging.getLogger("backstate.timers")


class TimerSource(Protocol):
    """The database side, as coroutines (the caller runs the blocking work off the loop)."""

    async def claim_due(self, now_ms: int, limit: int) -> Claims:
        """Up to `limit` due timers, claimed, and when a timer next becomes claimable (due and
        unclaimed, or its claim expired): one look, one trip to the database."""
        ...

    async def retry(self, timer: Claimed, due_at_ms: int) -> None: ...

    async def drop(self, timer: Claimed) -> None: ...


# Delivers a claimed timer; False if it had been cancelled, re-armed or delivered elsewhere.
Deliver = Callable[[Claimed], Awaitable[bool | None]]
# Told of each timer dropped after its last attempt, with why (the machine's logs show it).
Dropped = Callable[[Claimed, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    delay_s: float = 30.0

    def retryable(self, exc: BaseException) -> bool:
        # A refusal by the receiver's allowWrite (an event from another instance) may pass too.
        return isinstance(exc, MachineError | ConflictError | RejectedByAuthorizerError)


class Scheduler:
    def __init__(self, source: TimerSource, deliver: Deliver, clock: Clock, *,
                 retry: RetryPolicy | None = None, poll_s: float = 1.0, batch: int = 256,
                 concurrency: int = 32, on_dropped: Dropped | None = None):
        self._source = source
        self._deliver = deliver
        self._on_dropped = on_dropped
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._poll_s = poll_s
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0      # claimed and not yet settled: never claim more than a batch
        # Per instance with a delivery task running: its claimed timers not yet delivered.
        self._queues: dict[uuid.UUID, deque[Claimed]] = {}
        self.delivered = 0
        self.dropped = 0
        self.looks = 0   # times the loop looked for due timers
        self._unreachable = False

    # -- waking ---------------------------------------------------------------------------
    def notify(self) -> None:
        """A timer was armed (from any thread): look again now rather than at the next poll."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            # Cleared before looking, not before sleeping: a delivery that settles or a timer
            # armed while this iteration awaits the database must still cut the sleep short.
            self._wake.clear()
            try:
                wait = await self.run_once()
            except UnavailableError as exc:   # said once per outage, tried every poll
                if not self._unreachable:
                    log.warning("timers: the database is unreachable, trying again every "
                                "%.1f s: %s", self._poll_s, exc)
                self._unreachable = True
                wait = self._poll_s
            except Exception:
                log.exception("timer scheduler iteration failed")
                wait = self._poll_s
            else:
                if self._unreachable:
                    log.warning("timers: the database is reachable again")
                self._unreachable = False
            self.looks += 1
            await self._sleep(wait)

    async def run_once(self) -> float:
        """Claim and start delivering what is due; seconds until the next look."""
        if self._in_flight > self._batch // 2:
            return self._poll_s               # a settled delivery wakes the loop
        room = self._batch - self._in_flight
        now = self._clock.now_ms()
        claims = await self._source.claim_due(now, room)
        claimed = claims.timers
        if claimed:
            metrics.TIMERS_CLAIMED.inc(len(claimed))
        self._in_flight += len(claimed)
        for timer in claimed:   # in due order
            queue = self._queues.get(timer.instance_id)
            if queue is not None:
                queue.append(timer)   # after the earlier ones its instance's task delivers
            else:
                self._queues[timer.instance_id] = deque([timer])
                self._spawn(self._deliver_queue(timer.instance_id))
        if claimed and len(claimed) == room:
            return 0.0                        # more may be due right now
        if claims.next_due_ms is None:
            return self._poll_s
        return min(self._poll_s, max(0.0, (claims.next_due_ms - self._clock.now_ms()) / 1000.0))

    async def drain(self) -> None:
        """Wait for the deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Shutdown: cancel the deliveries in flight and wait for them to unwind (database
        work already running in a thread finishes first, so its connection goes back to the
        pool before the pool is disposed). Their timers' claims expire and are delivered
        again, by this process after a restart or by another one."""
        for task in list(self._tasks):
            task.cancel()
        await self.drain()

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- delivery -------------------------------------------------------------------------
    async def _deliver_queue(self, instance_id: uuid.UUID) -> None:
        queue = self._queues[instance_id]
        try:
            async with self._slots:
                while queue:
                    if len(queue) == 1:
                        await self._deliver_one(queue.popleft())
                        continue
                    due = list(queue)
                    queue.clear()
                    # Each reaches the instance's queue before the next starts: in due order.
                    await asyncio.gather(*(self._deliver_one(timer) for timer in due))
        finally:
            del self._queues[instance_id]

    async def _deliver_one(self, timer: Claimed) -> None:
        try:
            await self._attempt(timer)
        except UnavailableError as exc:   # delivering it, or settling a failed delivery
            metrics.TIMERS_DEFERRED.inc()
            log.warning("timer %r of instance %s not delivered, the database is unreachable "
                        "(delivered again once its claim expires): %s", timer.send_id,
                        timer.instance_id, exc)
        except Exception:   # settling failed: the claim expires and it is delivered again
            log.exception("timer %r of instance %s: settling its delivery failed",
                          timer.send_id, timer.instance_id)
        finally:
            self._in_flight -= 1
            self._wake.set()

    async def _attempt(self, timer: Claimed) -> None:
        try:
            delivered = await self._deliver(timer)
        except NotFoundError:
            metrics.TIMERS_DROPPED_GONE.inc()
            await self._source.drop(timer)
            return
        except UnavailableError:
            raise
        except Exception as exc:
            await self._failed(timer, exc)
            return
        if delivered is False:
            metrics.TIMERS_SUPERSEDED.inc()
            return
        self.delivered += 1
        metrics.TIMERS_DELIVERED.inc()
        metrics.TIMER_LATENESS.observe(max(0, self._clock.now_ms() - timer.due_at_ms) / 1000)

    async def _failed(self, timer: Claimed, exc: BaseException) -> None:
        attempt = timer.attempts + 1
        if self._retry.retryable(exc) and attempt < self._retry.attempts:
            due = self._clock.now_ms() + int(self._retry.delay_s * 1000)
            log.warning("timer %r of instance %s failed (attempt %d of %d), retrying in %.0f s: "
                        "%s", timer.send_id, timer.instance_id, attempt, self._retry.attempts,
                        self._retry.delay_s, exc)
            await self._source.retry(timer, due)
            metrics.TIMERS_RETRIED.inc()
            return
        self.dropped += 1
        metrics.TIMERS_DROPPED_FAILED.inc()
        log.error("timer %r of instance %s dropped after %d attempt(s): %s", timer.send_id,
                  timer.instance_id, attempt, exc)
        if self._on_dropped is not None:
            self._on_dropped(timer, f"its delivery failed {attempt} time(s), last: {exc}")
        await self._source.drop(timer)

