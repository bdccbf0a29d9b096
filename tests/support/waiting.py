"""Waiting for a condition in tests: poll it until it holds or a generous deadline passes, so a
test never depends on how fast the machine is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], bool], timeout: float = 30.0,
               describe: Callable[[], Any] | None = None, interval: float = 0.02) -> None:
    """Return once `check()` is true; fail after `timeout` seconds, with `describe()` (what
    was last seen) in the message."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            seen = describe() if describe else None
            raise AssertionError(f"condition not reached within {timeout} s; last seen: {seen}")
        time.sleep(interval)
