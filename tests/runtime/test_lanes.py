"""Steps start a few at a time, yet a slow step never holds up the others for long."""

from __future__ import annotations

import asyncio
import time

from runtime.instances.lanes import Lanes


def test_steps_queue_for_a_lane_and_a_slow_one_gives_it_back() -> None:
    async def scenario() -> dict[str, float]:
        lanes = Lanes(1, hold_s=0.2)
        started: dict[str, float] = {}
        t0 = time.monotonic()

        async def step(name: str, runs_s: float) -> None:
            async with lanes.lane():
                started[name] = time.monotonic() - t0
                await asyncio.sleep(runs_s)

        await asyncio.gather(step("quick", 0.05), step("next", 0.0), step("slow", 0.6))
        await asyncio.gather(step("slow2", 0.6), step("after", 0.0))
        return started

    started = asyncio.run(scenario())
    assert started["quick"] < 0.03
    assert 0.04 < started["next"] < 0.15  # waited for "quick" to finish
    assert started["slow"] < 0.2
    assert 0.15 < started["after"] - started["slow2"] < 0.45  # "slow2" gave its lane back
