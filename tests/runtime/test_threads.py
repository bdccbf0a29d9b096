"""Blocking work handed to `Threads`: results and errors come back; a cancelled caller still
waits for work that already started (it may hold the instance's lock meanwhile)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from runtime.instances.threads import Threads


@pytest.fixture
def threads() -> Iterator[Threads]:
    """One worker thread: work queued behind running work has not started."""
    pool = Threads(1, "t")
    yield pool
    pool.close()


async def turns(n: int = 20) -> None:
    """Let the loop run other tasks for a while (no clock involved)."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_results_and_exceptions_come_back(threads: Threads) -> None:
    def fail() -> None:
        raise ValueError("boom")

    async def go() -> None:
        assert await threads.run(lambda: 41 + 1) == 42
        with pytest.raises(ValueError, match="boom"):
            await threads.run(fail)

    asyncio.run(go())


def test_a_cancelled_caller_waits_for_work_that_started(threads: Threads) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        release.wait(10)
        finished.set()

    async def go() -> None:
        caller = asyncio.ensure_future(threads.run(work))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        caller.cancel()
        await turns()
        assert not caller.done()  # still waiting for the running work
        caller.cancel()           # cancelling again does not cut the wait short either
        await turns()
        assert not caller.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert finished.is_set()

    asyncio.run(go())


def test_a_cancelled_caller_whose_work_had_not_started_does_not_wait(threads: Threads) -> None:
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(10)

    async def go() -> None:
        busy = asyncio.ensure_future(threads.run(block))
        queued = asyncio.ensure_future(threads.run(lambda: None))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        await busy

    asyncio.run(go())
