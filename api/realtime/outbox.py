"""What one connection still has to send, bounded so a slow reader costs a fixed amount of
memory and never slows anyone else.

States wait per subscription, in order, and subscriptions take turns (one instance's burst does
not hold the others back). A subscription more than `per_subscription` states behind keeps only
the latest: the one case where a subscriber does not see every state, logged (at most once a
minute per subscription) and counted. Error frames wait in a queue of their own, sent first; a
client that provokes more than `max_errors` unread errors loses the extra ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Protocol

from runtime.realtime import Change

log = logging.getLogger("backstate.realtime")
WARN_EVERY_S = 60.0


class Queued(Protocol):
    """A subscription, as the outbox sees it."""

    @property
    def machine(self) -> str: ...

    @property
    def instance(self) -> str: ...

    closed: bool
    pending: deque[Change]
    coalesced: int
    warned_at: float


class Outbox:
    def __init__(self, per_subscription: int, max_errors: int = 64):
        self._per_subscription = max(1, per_subscription)
        self._max_errors = max_errors
        self._ready: deque[Queued] = deque()
        self._errors: deque[str] = deque()
        self._work = asyncio.Event()
        self.coalesced = 0
        self.errors_dropped = 0

    def put(self, sub: Queued, change: Change) -> None:
        if not sub.pending:
            self._ready.append(sub)
        sub.pending.append(change)
        if len(sub.pending) > self._per_subscription:
            self._coalesce(sub)
        self._work.set()

    def error(self, frame: str) -> None:
        if len(self._errors) >= self._max_errors:
            self.errors_dropped += 1
            return
        self._errors.append(frame)
        self._work.set()

    async def get(self) -> tuple[Queued | None, Change | str]:
        """The next frame to send: an error frame (no subscription), or a subscription's
        next state."""
        while True:
            if self._errors:
                return None, self._errors.popleft()
            while self._ready:
                sub = self._ready.popleft()
                if sub.closed or not sub.pending:
                    continue
                change = sub.pending.popleft()
                if sub.pending:
                    self._ready.append(sub)
                return sub, change
            self._work.clear()
            await self._work.wait()

    def _coalesce(self, sub: Queued) -> None:
        latest = sub.pending[-1]
        skipped = len(sub.pending) - 1
        sub.pending.clear()
        sub.pending.append(latest)
        sub.coalesced += skipped
        self.coalesced += skipped
        now = time.monotonic()
        if now - sub.warned_at >= WARN_EVERY_S:
            sub.warned_at = now
            log.warning("realtime: a subscriber of %s/%s reads slower than the instance changes: "
                        "%d states skipped so far, it is sent the latest", sub.machine,
                        sub.instance, sub.coalesced)
