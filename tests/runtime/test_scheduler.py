"""The scheduler loop, driven one iteration at a time on a fake clock: no test sleeps.

The timer source here is an in-memory stand-in for the database (the real claim protocol is
tested in test_timer_store.py); what is under test is when the loop looks, what it delivers,
in which order, and its retry policy."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace

from runtime.clock import FakeClock
from runtime.errors import ConflictError, MachineError, NotFoundError, UnavailableError
from runtime.scheduler import RetryPolicy, Scheduler
from runtime.store.timers import Claimed, Claims

A, B = uuid.uuid4(), uuid.uuid4()


@dataclass
class MemorySource:
    timers: dict[int, Claimed] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def arm(self, instance: uuid.UUID, send_id: str, due: int) -> None:
        tid = len(self.timers) + len(self.dropped) + 1
        self.timers[tid] = Claimed(tid, instance, send_id, {"type": send_id}, due, 0, "")

    async def claim_due(self, now_ms: int, limit: int) -> Claims:
        due = sorted((t for t in self.timers.values() if t.due_at_ms <= now_ms),
                     key=lambda t: (t.due_at_ms, t.id))[:limit]
        for t in due:
            del self.timers[t.id]
        return Claims(due, min((t.due_at_ms for t in self.timers.values()), default=None))

    async def retry(self, timer: Claimed, due_at_ms: int) -> None:
        self.timers[timer.id] = replace(timer, due_at_ms=due_at_ms, attempts=timer.attempts + 1)

    async def drop(self, timer: Claimed) -> None:
        self.dropped.append(timer.send_id)


def scheduler(source: MemorySource, clock: FakeClock, deliver, **kw) -> Scheduler:
    return Scheduler(source, deliver, clock, poll_s=5.0, **kw)


def test_delivers_due_timers_in_due_order_and_says_when_to_look_next():
    async def go():
        clock, source, seen = FakeClock(0, autojump=False), MemorySource(), []
        source.arm(A, "second", 200)
        source.arm(A, "first", 100)
        source.arm(B, "later", 10_000)

        async def deliver(t: Claimed) -> None:
            seen.append(t.send_id)

        s = scheduler(source, clock, deliver)
        assert await s.run_once() == 0.1          # nothing due: wake at the earliest (100 ms)
        clock.advance(0.2)
        wait = await s.run_once()
        await s.drain()
        assert seen == ["first", "second"]
        assert wait == 5.0                        # next due (10 s away) is past the poll interval
    asyncio.run(go())


def test_failures_are_retried_then_dropped_after_the_last_attempt():
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        source.arm(A, "flaky", 0)
        attempts = []

        async def deliver(t: Claimed) -> None:
            attempts.append(clock.now_ms())
            raise MachineError("guard threw")

        s = scheduler(source, clock, deliver, retry=RetryPolicy(attempts=5, delay_s=30))
        for _ in range(6):
            await s.run_once()
            await s.drain()
            clock.advance(30)
        assert attempts == [0, 30_000, 60_000, 90_000, 120_000]
        assert source.dropped == ["flaky"] and s.dropped == 1
    asyncio.run(go())


def test_a_paused_instance_is_retried_and_a_deleted_one_dropped_at_once():
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        source.arm(A, "paused", 0)
        source.arm(B, "gone", 0)

        async def deliver(t: Claimed) -> None:
            if t.instance_id == A:
                raise ConflictError("instance is paused")
            raise NotFoundError("instance not found")

        s = scheduler(source, clock, deliver)
        await s.run_once()
        await s.drain()
        assert source.dropped == ["gone"]
        assert [t.send_id for t in source.timers.values()] == ["paused"]
        assert next(iter(source.timers.values())).due_at_ms == 30_000
    asyncio.run(go())


def test_notify_wakes_the_loop_before_its_poll_interval():
    async def go():
        clock, source, seen = FakeClock(0, autojump=False), MemorySource(), []

        async def deliver(t: Claimed) -> None:
            seen.append(t.send_id)

        s = scheduler(source, clock, deliver)
        task = asyncio.create_task(s.run())
        await asyncio.sleep(0.01)                 # the loop is now waiting (poll: 5 s)
        source.arm(A, "now", 0)
        s.notify()
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.001)
        task.cancel()
        assert seen == ["now"]
    asyncio.run(go())


def test_closing_cancels_deliveries_in_flight():
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        source.arm(A, "slow", 0)
        started, finished = asyncio.Event(), []

        async def deliver(t: Claimed) -> None:
            started.set()
            await asyncio.sleep(3600)
            finished.append(t.send_id)

        s = scheduler(source, clock, deliver)
        await s.run_once()
        await started.wait()
        await asyncio.wait_for(s.aclose(), timeout=5)
        assert finished == [] and not s._tasks
    asyncio.run(go())


def test_claims_no_more_than_a_batch_while_deliveries_are_in_flight():
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        for k in range(10):
            source.arm(uuid.uuid4(), f"t{k}", 0)
        release = asyncio.Event()

        async def deliver(t: Claimed) -> None:
            await release.wait()

        s = scheduler(source, clock, deliver, batch=4)
        await s.run_once()
        await s.run_once()                     # nothing settled yet: no room to claim more
        assert len(source.timers) == 6
        release.set()
        await s.drain()
        await s.run_once()
        assert len(source.timers) == 2
        await s.aclose()
    asyncio.run(go())


def test_claims_again_only_once_half_the_batch_has_settled():
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        for k in range(20):
            source.arm(uuid.uuid4(), f"t{k}", 0)
        gates = {f"t{k}": asyncio.Event() for k in range(20)}

        async def deliver(t: Claimed) -> None:
            await gates[t.send_id].wait()

        s = scheduler(source, clock, deliver, batch=8)
        await s.run_once()
        assert len(source.timers) == 12
        for k in range(3):                     # 5 of 8 still in flight: more than half
            gates[f"t{k}"].set()
        await asyncio.sleep(0)
        await s.run_once()
        assert len(source.timers) == 12
        gates["t3"].set()                      # 4 in flight: claim 4 more in one go
        await asyncio.sleep(0)
        await s.run_once()
        assert len(source.timers) == 8
        for gate in gates.values():
            gate.set()
        await s.drain()
        await s.aclose()
    asyncio.run(go())


def test_a_later_claim_of_an_instance_waits_for_its_earlier_timers():
    async def go():
        clock, source, log = FakeClock(0, autojump=False), MemorySource(), []
        source.arm(A, "a1", 0)
        release = asyncio.Event()

        async def deliver(t: Claimed) -> None:
            log.append(f"start {t.send_id}")
            if t.send_id == "a1":
                await release.wait()
            log.append(f"end {t.send_id}")

        s = scheduler(source, clock, deliver)
        await s.run_once()
        await asyncio.sleep(0)
        source.arm(A, "a2", 0)                 # due while "a1" is still being delivered
        source.arm(B, "b1", 0)
        await s.run_once()
        await asyncio.sleep(0)
        assert log == ["start a1", "start b1", "end b1"]   # other instances go ahead
        release.set()
        await s.drain()
        assert log[3:] == ["end a1", "start a2", "end a2"]
        await s.aclose()
    asyncio.run(go())


def test_timers_of_an_instance_due_together_are_handed_over_at_once_in_due_order():
    """So that the instance's path can run them as one batch (runtime/instances/mailbox.py)."""
    async def go():
        clock, source, log = FakeClock(0, autojump=False), MemorySource(), []
        for k in range(3):
            source.arm(A, f"a{k}", k)
        release = asyncio.Event()

        async def deliver(t: Claimed) -> None:
            log.append(f"start {t.send_id}")
            await release.wait()
            log.append(f"end {t.send_id}")

        clock.advance(1)
        s = scheduler(source, clock, deliver)
        await s.run_once()
        for _ in range(3):
            await asyncio.sleep(0)
        assert log == ["start a0", "start a1", "start a2"]
        release.set()
        await s.drain()
        assert s.delivered == 3
        await s.aclose()
    asyncio.run(go())


def test_an_unreachable_database_leaves_the_claim_to_expire_and_counts_no_attempt():
    """Nothing of a delivery stopped by an outage was committed, and settling it (a retry or a
    drop) would need the database too: the claim stays, expires, and any process delivers the
    timer again, without it counting as a failed attempt."""
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        source.arm(A, "t", 0)
        calls = []

        async def deliver(t: Claimed) -> None:
            calls.append(t.send_id)
            raise UnavailableError("the database is unreachable")

        s = scheduler(source, clock, deliver, retry=RetryPolicy(attempts=1, delay_s=30))
        await s.run_once()
        await s.drain()
        assert calls == ["t"]
        assert source.dropped == [] and source.timers == {}   # neither dropped nor re-armed
        assert s.dropped == 0 and s.delivered == 0
    asyncio.run(go())


def test_a_superseded_delivery_is_not_counted_delivered():
    async def go():
        clock, source = FakeClock(0, autojump=False), MemorySource()
        source.arm(A, "t", 0)

        async def deliver(t: Claimed) -> bool:
            return False   # re-armed, cancelled or delivered elsewhere meanwhile

        s = scheduler(source, clock, deliver)
        await s.run_once()
        await s.drain()
        assert s.delivered == 0 and source.dropped == []
    asyncio.run(go())
