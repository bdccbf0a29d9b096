"""Per-process queues of the work waiting for each instance, each drained by one task.

Work for one instance runs one piece at a time, in arrival order within a process (across
processes the instance's lease takes over). When several client events (or several due
timers) wait for the same instance they run together, as one batch: one trip to a step thread,
one VM run, one commit, still one transition per event and each caller answered with its own
state, in order. A batch is what queued while the previous work ran, so under no load nothing
waits for company. Creations and outbox deliveries run alone.

A caller that stops waiting (its request was cancelled) leaves its work to run if it has
started; work not started yet is skipped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from runtime import logcontext


@dataclass(eq=False)
class Work:
    """One piece of work for an instance. `run` runs it with the work queued right behind it
    that has an equal `batch` key (`batch`, in order, itself first): it settles each one's
    future and returns the ones it did not run, which go back to the head of the queue. Work
    whose key is None runs alone."""

    run: Callable[[list[Work]], Awaitable[list[Work]]]
    batch: object = None
    payload: Any = None
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class Mailboxes:
    def __init__(self, *, max_batch: int):
        self._max_batch = max_batch
        self._boxes: dict[Hashable, deque[Work]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, key: Hashable, work: Work) -> Any:
        """Queue `work` behind the instance's earlier work; its result once it ran."""
        logcontext.INSTANCE.set(key)   # for this task's log lines, and the drain it may start
        box = self._boxes.get(key)
        if box is None:
            box = self._boxes[key] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(key, box))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        box.append(work)
        return await work.future

    async def _drain(self, key: Hashable, box: deque[Work]) -> None:
        try:
            while box:
                batch = self._next(box)
                if not batch:
                    continue
                try:
                    unrun = await batch[0].run(batch)
                except BaseException as exc:   # `run` settles futures; this is a bug's net
                    for work in batch:
                        if not work.future.done():
                            work.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                box.extendleft(reversed(unrun))
        finally:
            del self._boxes[key]

    def _next(self, box: deque[Work]) -> list[Work]:
        head = box.popleft()
        if head.future.done():   # its caller went away before it started
            return []
        batch = [head]
        key = head.batch
        while key is not None and box and box[0].batch == key and len(batch) < self._max_batch:
            work = box.popleft()
            if not work.future.done():
                batch.append(work)
        return batch

    async def aclose(self) -> None:
        """Let the work that started finish (shutdown)."""
        if self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)
