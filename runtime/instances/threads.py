"""Blocking work off the event loop, on a bounded pool of threads, never abandoned.

`anyio.to_thread.run_sync` did this for a while, but its per-call machinery (a capacity
limiter, a shielded cancel scope, a copied context) cost more CPU under the GIL per event than
the statements of an event's commit. A plain executor and one wrapped
future are enough here, with the one guarantee that mattered kept: a caller cancelled while
its work runs waits for that work to finish (a thread cannot be stopped, and the caller may
hold the instance's lock that keeps the next step out until this one is done).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Threads:
    def __init__(self, count: int, name: str):
        self._pool = cf.ThreadPoolExecutor(max_workers=count, thread_name_prefix=name)

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` on one of the threads, in the caller's context (its log context,
        `runtime/logcontext.py`: an O(1) copy); its result or exception."""
        work = self._pool.submit(contextvars.copy_context().run, fn)
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            if not work.cancel():  # already running: let it finish before we go
                await _finished(work)
            raise

    def close(self) -> None:
        """Drop queued work; running work finishes on its own (its threads exit after it)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _finished(work: cf.Future[T]) -> None:
    waiter = asyncio.wrap_future(work)
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            continue  # cancelled again: still wait, as above
        except BaseException:  # its failure is not this caller's to report now
            return
