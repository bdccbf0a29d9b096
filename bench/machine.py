"""What the machine is and did during a measurement: its CPUs, CPU stolen by the hypervisor,
and the CPU the server used.

On a shared virtual machine the hypervisor may run other guests on "our" cores: that time
(`steal` in /proc/stat) shows up here as slower events, not as our CPU. The benchmarks print
it next to their figures, so a reader can tell a slow run from a slow server. The server's CPU
per event is the figure that moves least with the machine's phases: compare that between two
versions of the code, not events/s alone.
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


class ChildrenCpu:
    """`with ChildrenCpu() as c: ...` then `c.seconds`: the CPU time (user + system, all
    threads) that the live processes below this one used meanwhile — the server's, when the
    load generator is a child that has exited by the end (Linux; 0.0 elsewhere)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start: dict[int, float] = {}

    def __enter__(self) -> ChildrenCpu:
        self._start = _descendants_cpu_s(os.getpid())
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None
                 ) -> None:
        end = _descendants_cpu_s(os.getpid())
        self.seconds = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in end.items())


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below `pid` (default: this one)."""
    found: list[int] = []
    for child in _children(os.getpid() if pid is None else pid):
        found += [child, *descendants(child)]
    return found


def _descendants_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each live process below `pid`."""
    found: dict[int, float] = {}
    for child in _children(pid):
        cpu = _cpu_s(child)
        if cpu is not None:
            found[child] = cpu
            found.update(_descendants_cpu_s(child))
    return found


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(child) for child in f.read().split()]
        except OSError:
            continue
    return children


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime
