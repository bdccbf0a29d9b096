"""Admission of steps to the CPU: a few at a time, but never held up by a slow one.

A step is mostly CPU (wasm, JSON, the commit) for a few milliseconds, yet may also wait on a
fetch for its whole settle window. Letting every waiting request's step run at once put a dozen
threads in contention for the GIL, and that contention cost a large share more CPU per event
than the steps themselves (bench/FIGURES.md). So steps take a lane (`count` of them) to start,
queueing on the event loop, where waiting is cheap; a step still running after `hold_s` gives
its lane back (it is waiting on I/O, or spinning until its time limit) and runs on outside the
count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Lanes:
    def __init__(self, count: int, hold_s: float):
        self._free = asyncio.Semaphore(count)
        self._hold_s = hold_s

    @asynccontextmanager
    async def lane(self) -> AsyncIterator[None]:
        await self._free.acquire()
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self._free.release()

        timer = asyncio.get_running_loop().call_later(self._hold_s, give_back)
        try:
            yield
        finally:
            timer.cancel()
            give_back()
