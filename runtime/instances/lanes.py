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
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")
_held = threading.local()   # the lane of the step running on this thread, if it holds one


class Lanes:
    def __init__(self, count: int, hold_s: float):
        self._free = asyncio.Semaphore(count)
        self._hold_s = hold_s

    @asynccontextmanager
    async def lane(self) -> AsyncIterator[Callable[[], None]]:
        """Hold a lane; yields a function that gives it back early from any thread."""
        await self._free.acquire()
        loop = asyncio.get_running_loop()
        given_back = False

        def give_back() -> None:   # on the loop only
            nonlocal given_back
            if not given_back:
                given_back = True
                self._free.release()

        def give_back_from_a_thread() -> None:
            loop.call_soon_threadsafe(give_back)

        timer = loop.call_later(self._hold_s, give_back)
        try:
            yield give_back_from_a_thread
        finally:
            timer.cancel()
            give_back()


def in_lane(give_back: Callable[[], None], fn: Callable[[], T]) -> T:
    """Run `fn` (on a step thread) holding the lane `give_back` returns early."""
    _held.give_back = give_back
    try:
        return fn()
    finally:
        _held.give_back = None


def leave_lane() -> None:
    """Give back the lane of the step running on this thread, if it still holds one: it is
    about to wait (for its commit to reach the disk), and another step may use the CPU."""
    give_back = getattr(_held, "give_back", None)
    if give_back is not None:
        _held.give_back = None
        give_back()
