"""Steps start a few at a time, yet a slow step, or one waiting for its commit, never holds
up the others."""

from __future__ import annotations

import asyncio
import threading

from runtime.instances.lanes import Lanes, in_lane, leave_lane


async def _queued(lanes: Lanes, waiting: int) -> None:
    while len(lanes._free._waiters or ()) < waiting:  # type: ignore[attr-defined]
        await asyncio.sleep(0.001)


def test_a_step_waits_for_a_lane_until_the_holder_is_done() -> None:
    async def scenario() -> list[str]:
        lanes, order, done = Lanes(1, hold_s=60), [], asyncio.Event()

        async def first() -> None:
            async with lanes.lane():
                order.append("first starts")
                await done.wait()
                order.append("first ends")

        async def second() -> None:
            async with lanes.lane():
                order.append("second starts")

        one = asyncio.create_task(first())
        await asyncio.sleep(0)
        two = asyncio.create_task(second())
        await _queued(lanes, 1)
        done.set()
        await asyncio.gather(one, two)
        return order

    assert asyncio.run(scenario()) == ["first starts", "first ends", "second starts"]


def test_a_step_still_running_after_the_hold_time_gives_its_lane_back() -> None:
    async def scenario() -> list[str]:
        lanes, order, done = Lanes(1, hold_s=0.01), [], asyncio.Event()

        async def slow() -> None:
            async with lanes.lane():
                order.append("slow starts")
                await done.wait()

        async def quick() -> None:
            async with lanes.lane():
                order.append("quick runs")
            done.set()

        await asyncio.gather(slow(), quick())
        return order

    assert asyncio.run(scenario()) == ["slow starts", "quick runs"]  # while slow still ran


def test_a_step_leaving_its_lane_from_its_thread_lets_the_next_one_start() -> None:
    async def scenario() -> list[str]:
        lanes, order = Lanes(1, hold_s=60), []
        left, finish = threading.Event(), threading.Event()

        def waits_for_its_commit() -> None:
            order.append("committing step starts")
            leave_lane()   # about to wait for the disk
            left.set()
            finish.wait(30)

        async def committing() -> None:
            async with lanes.lane() as give_back:
                await asyncio.to_thread(in_lane, give_back, waits_for_its_commit)

        async def next_one() -> None:
            while not left.is_set():
                await asyncio.sleep(0.001)
            async with lanes.lane():
                order.append("next step runs")
            finish.set()

        await asyncio.gather(committing(), next_one())
        return order

    assert asyncio.run(scenario()) == ["committing step starts", "next step runs"]
