"""A VM's linear memory at rest, and how a live memory is made byte-identical to it again.

Every event runs in a VM whose memory is exactly its version's snapshot: a fresh clone, or a
used VM reset after its event. Resetting is the largest fixed cost of an event after the
JavaScript itself, and it is bound by memory bandwidth (each byte written is also a cache line
evicted from under the next step), so the snapshot is cut into runs, each restored the
cheapest way its contents allow:

* "copy": bytes that are not zero (the guest's static data and its heap), copied back;
* "zero": zeros, written as zeros (half the cost of a copy);
* "drop": the bottom of the guest's stack. `--stack-first` puts the 1 MiB shadow stack at
  address 0, growing down from 1 MiB; an event uses its top few pages. The rest is given back
  to the kernel (`MADV_DONTNEED`), which makes every page of it read as zeros again without
  writing a byte; a page an event does reach costs one page fault (a few microseconds) the
  next time it is touched. This is only correct on private anonymous memory, so `restore`
  maps that range anonymous itself (`map_anonymous`) in every new VM, whatever wasmtime's own
  mapping of it was (part of a memory can be a copy-on-write view of the compiled module's
  file, which MADV_DONTNEED would revert to the file instead). There are drop runs on Linux
  only; if dropping ever fails, the run is zeroed instead.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import platform
import sys
from dataclasses import dataclass
from typing import Literal

from runtime.errors import SandboxError

Kind = Literal["copy", "zero", "drop"]
PAGE = mmap.PAGESIZE
GRANULE = 1 << 16         # runs are found in 64 KiB steps (wasm's page size)
STACK_HOT = 64 << 10      # the top of the stack, used by every event: zeroed, never dropped

# mmap(2) and madvise(2) on Linux, where MAP_FIXED and MADV_DONTNEED mean what a drop needs.
CAN_DROP = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")
_MAP_FIXED = 0x10
if CAN_DROP:
    _libc = ctypes.CDLL(None, use_errno=True)
    _mmap = _libc.mmap
    _mmap.restype = ctypes.c_void_p
    _mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
    _madvise = _libc.madvise
    _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


@dataclass(frozen=True)
class Run:
    start: int
    end: int
    kind: Kind


@dataclass(frozen=True)
class Snapshot:
    """A quiescent VM's linear memory: the source of every fresh VM cloned from it."""

    memory: bytes
    scratch: int          # guest address of the [status, length] result area
    runs: tuple[Run, ...] = ()

    @property
    def size(self) -> int:
        return len(self.memory)

    @functools.cached_property
    def _address(self) -> int:
        """Where `memory`'s bytes are (they never move): taken once, not on every reset."""
        return ctypes.cast(ctypes.c_char_p(self.memory), ctypes.c_void_p).value or 0

    @classmethod
    def of(cls, memory: bytes, scratch: int) -> Snapshot:
        return cls(memory, scratch, runs_of(memory, droppable=CAN_DROP))

    def restore(self, base: int) -> None:
        """Write the snapshot into a new instance's memory at `base` (as large as the
        snapshot): the only way a memory that `reset` may later be given is prepared."""
        for run in self.runs:
            if run.kind == "drop" and not map_anonymous(base + run.start, run.end - run.start):
                raise SandboxError(f"could not map the VM's stack (errno {ctypes.get_errno()})")
        self.reset(base)

    def reset(self, base: int) -> None:
        """Make the memory at `base`, prepared by `restore`, byte-identical to the snapshot."""
        source = self._address
        for run in self.runs:
            length = run.end - run.start
            if run.kind == "copy":
                ctypes.memmove(base + run.start, source + run.start, length)
            elif not (run.kind == "drop" and drop_pages(base + run.start, length)):
                ctypes.memset(base + run.start, 0, length)


def runs_of(memory: bytes, *, droppable: bool) -> tuple[Run, ...]:
    """`memory` as copy and zero runs in GRANULE steps; with `droppable`, a zero run at
    address 0 (the bottom of the stack) is split into a drop run and its top STACK_HOT bytes."""
    zero = bytes(GRANULE)
    runs: list[Run] = []
    for start in range(0, len(memory), GRANULE):
        end = min(start + GRANULE, len(memory))
        kind: Kind = "zero" if memory[start:end] == zero[: end - start] else "copy"
        if runs and runs[-1].kind == kind:
            runs[-1] = Run(runs[-1].start, end, kind)
        else:
            runs.append(Run(start, end, kind))
    first = runs[0] if runs else None
    if droppable and first and first.kind == "zero":
        cut = (first.end - STACK_HOT) // PAGE * PAGE
        if cut >= STACK_HOT:
            runs[0:1] = [Run(0, cut, "drop"), Run(cut, first.end, "zero")]
    return tuple(runs)


def map_anonymous(address: int, length: int) -> bool:
    """Replace [address, address + length) with fresh private anonymous pages (zeros)."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED
    got = _mmap(address, length, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
    return bool(got == address)


def drop_pages(address: int, length: int) -> bool:
    """Give private anonymous pages back to the kernel: they read as zeros again."""
    return CAN_DROP and bool(_madvise(address, length, mmap.MADV_DONTNEED) == 0)
