"""The time seam. Everything in runtime/ that reads the clock or waits takes a `Clock`, so tests
of timers and windows run without sleeping (see FakeClock)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Collection
from typing import Any, Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, epoch milliseconds: what timers and `ts` are expressed in."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: what windows and deadlines use."""

    def wait(self, futures: Collection[cf.Future[Any]], timeout: float) -> set[cf.Future[Any]]:
        """Wait until one of `futures` is done or `timeout` seconds pass; the done ones."""


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, futures: Collection[cf.Future[Any]], timeout: float) -> set[cf.Future[Any]]:
        if not futures:
            time.sleep(max(timeout, 0.0))
            return set()
        done, _ = cf.wait(futures, timeout=max(timeout, 0.0), return_when=cf.FIRST_COMPLETED)
        return done


class FakeClock:
    """A clock that only moves when told to, or, with `autojump`, whenever the code under test
    would wait with nothing in flight (like trio's MockClock): waits cost no real time."""

    def __init__(self, start_ms: int = 1_700_000_000_000, *, autojump: bool = True):
        self._now_ms = float(start_ms)
        self._lock = threading.Lock()
        self.autojump = autojump

    def now_ms(self) -> int:
        with self._lock:
            return int(self._now_ms)

    def monotonic(self) -> float:
        with self._lock:
            return self._now_ms / 1000.0

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now_ms += seconds * 1000.0

    def wait(self, futures: Collection[cf.Future[Any]], timeout: float) -> set[cf.Future[Any]]:
        if futures:   # real work (a fetch) is in flight: wait for it in real time
            done, _ = cf.wait(futures, timeout=min(max(timeout, 0.0), 5.0),
                              return_when=cf.FIRST_COMPLETED)
            if done:
                return done
        if self.autojump and timeout > 0:
            self.advance(timeout)
        return set()
