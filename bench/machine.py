"""What the machine is and did during a measurement: its CPUs, and CPU stolen by the hypervisor.

On a shared virtual machine the hypervisor may run other guests on "our" cores: that time
(`steal` in /proc/stat) shows up here as slower events, not as our CPU. The benchmarks print
it next to their figures, so a reader can tell a slow run from a slow server.
"""

from __future__ import annotations

import os
import time
from types import TracebackType


class Steal:
    """`with Steal() as s: ...` then `s.share`: stolen time over all CPUs' wall time (Linux;
    0.0 elsewhere)."""

    def __init__(self) -> None:
        self.share = 0.0
        self._start = (0.0, 0.0)

    def __enter__(self) -> Steal:
        self._start = (_stolen_s(), time.monotonic())
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None
                 ) -> None:
        stolen, started = _stolen_s() - self._start[0], self._start[1]
        wall = (time.monotonic() - started) * (os.cpu_count() or 1)
        self.share = stolen / wall if wall > 0 else 0.0

    def __str__(self) -> str:
        return f"steal {100 * self.share:.0f}%"


def _stolen_s() -> float:
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def cpus() -> int:
    """The CPUs this process may run on: the benchmarks' default number of server workers, the
    deployment `backstate serve --workers` is for (one worker per CPU, each pinned to its own)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
