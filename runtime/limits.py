"""The limits one step runs under; defaults follow State Backed's documented limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeLimits:
    memory_bytes: int = 128 << 20     # linear memory of one VM
    window_s: float = 90.0            # settle window of one step, fetch waits included
    slice_s: float = 10.0             # longest synchronous run of JS (a loop is stopped here)
    load_s: float = 5.0               # evaluating a bundle's top level
    context_bytes: int = 400_000      # persisted context, UTF-8 JSON
    event_bytes: int = 400_000        # one event, UTF-8 JSON
    max_macrosteps: int = 1_000       # per step: a machine that sends itself events forever
    # Idle VMs kept per version: as many as steps of it in flight (a step keeps its VM while
    # it waits for its commits), or each wave of steps clones VMs the last one dropped.
    pool_size: int = 16
    # VMs stay warm between steps (runtime/pool.py); off: every step in a VM reset to its
    # version's snapshot (strict).
    warm: bool = True
    idle_vms: int = 32                # idle VMs kept across all versions
    live_per_vm: int = 1024           # instances one warm VM keeps live
    recycle_steps: int = 10_000       # a warm VM is replaced after this many steps...
    recycle_growth_bytes: int = 16 << 20   # ...or once its memory grew this much
