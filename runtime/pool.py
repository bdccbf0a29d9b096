"""Which VM serves a step: the idle VMs of each version and, when VMs stay warm, which
instances each keeps live.

Strict (`RuntimeLimits.warm` off): every step runs in a VM byte-identical to its version's
snapshot, a fresh clone or a used VM reset after its step, as isolation is strictest.

Warm (the default): a VM is not reset between steps. It serves any instance of its version,
as an isolate serves requests in Workers or Deno Deploy, and it keeps the interpreter of each
instance whose last step it ran and that settled cleanly, so that instance's next event skips
restoring its state (the JSON parse, `State.create`, the interpreter's start) as well as the
reset. The committed row stays the source of truth: a live state is used only when its
sequence number is the row's (the caller says which it read). A step that fails in any way (a
trap, a limit, a thrown guard or action, a commit refused) discards its VM and everything it
kept. VMs are recycled after `recycle_steps` steps or once their memory grew by
`recycle_growth_bytes`; each keeps at most `live_per_vm` instances (the least recently used go
first); and at most `idle_vms` idle VMs are kept across all versions, the least recently used
going first, which bounds the memory warm VMs hold together.

Counted (`runtime/metrics.py`): VMs alive, made, reset, dropped, and warm hits.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from runtime import metrics
from runtime.limits import RuntimeLimits
from runtime.sandbox.snapshot import Snapshot
from runtime.sandbox.vm import VM, Engine


@dataclass(eq=False)
class Slot:
    """A VM and what the pool knows of it."""

    vm: VM
    owner: VersionPool
    live: OrderedDict[str, int] = field(default_factory=OrderedDict)  # key -> seq, oldest first
    drops: list[str] = field(default_factory=list)   # live keys the VM must forget next step
    steps: int = 0

    def take_drops(self) -> list[str]:
        drops, self.drops = self.drops, []
        return drops


@dataclass(frozen=True)
class Taken:
    """A VM taken for one step; `warm`: it holds the instance live at the sequence asked for."""

    slot: Slot
    warm: bool

    @property
    def vm(self) -> VM:
        return self.slot.vm


class VMPool:
    """One per runtime: every version's idle VMs, under one lock and one bound."""

    def __init__(self, engine: Engine, limits: RuntimeLimits):
        self._engine = engine
        self._limits = limits
        self._lock = threading.Lock()
        self._idle: OrderedDict[Slot, None] = OrderedDict()   # every version's, oldest first

    def version(self, snapshot: Snapshot) -> VersionPool:
        return VersionPool(self, snapshot)

    @property
    def warm(self) -> bool:
        return self._limits.warm

    # --- under the lock, called by VersionPool ---------------------------------------------

    def _park(self, slot: Slot) -> list[Slot]:
        """Make `slot` idle; the idle slots evicted to stay within the bound."""
        self._idle[slot] = None
        evicted = []
        while len(self._idle) > self._limits.idle_vms:
            oldest, _ = self._idle.popitem(last=False)
            oldest.owner._forget(oldest)
            evicted.append(oldest)
        return evicted

    def _unpark(self, slot: Slot) -> None:
        self._idle.pop(slot, None)


class VersionPool:
    """The VMs of one version."""

    def __init__(self, pool: VMPool, snapshot: Snapshot):
        self._pool = pool
        self._snapshot = snapshot
        self._idle: list[Slot] = []
        self._where: dict[str, Slot] = {}   # live instance key -> the slot keeping it
        self.warm_steps = 0   # steps served by a VM that kept their instance live

    def acquire(self, key: str | None = None, seq: int | None = None) -> Taken:
        """A VM for a step of the instance `key` whose row is at `seq`: the one keeping it live
        at that sequence if it is idle, else any idle VM of this version, else a new one."""
        with self._pool._lock:
            taken = self._take_warm(key, seq) if key is not None else None
            if taken is None and self._idle:
                slot = self._idle.pop()
                self._pool._unpark(slot)
                taken = Taken(slot, False)
        if taken is not None:
            return taken
        vm = self._pool._engine.clone(self._snapshot, self._pool._limits.memory_bytes)
        metrics.VM_CLONES.inc()
        metrics.VMS.inc()
        return Taken(Slot(vm, self), False)

    def _take_warm(self, key: str, seq: int | None) -> Taken | None:
        slot = self._where.get(key)
        if slot is None or slot.live.get(key) != seq or slot not in self._idle:
            return None
        self._idle.remove(slot)
        self._pool._unpark(slot)
        self.warm_steps += 1
        metrics.VM_WARM_HITS.inc()
        return Taken(slot, True)

    def release(self, taken: Taken, *, keep: tuple[str, int] | None = None) -> None:
        """The step succeeded. Warm: `keep` = (key, seq) if the VM now keeps that instance
        live at that sequence. Strict: the VM is reset to the snapshot."""
        slot = taken.slot
        if not self._pool.warm:
            if slot.vm.reset():
                metrics.VM_RESETS.inc()
                self._idle_or_drop(slot)
            else:   # it trapped or grew: dropped
                _dropped()
            return
        if slot.vm.dead:   # a limit stopped it at the step's end (the services cut off)
            self.discard(taken)
            return
        slot.steps += 1
        limits = self._pool._limits
        grown = slot.vm.linear_memory() - self._snapshot.size
        if slot.steps >= limits.recycle_steps or grown > limits.recycle_growth_bytes:
            self.discard(taken)
            return
        with self._pool._lock:
            if keep is not None:
                self._keep(slot, *keep)
        self._idle_or_drop(slot)

    def discard(self, taken: Taken) -> None:
        """The step failed (or the VM is recycled): drop the VM and everything it kept."""
        with self._pool._lock:
            self._forget(taken.slot)

    def _keep(self, slot: Slot, key: str, seq: int) -> None:
        before = self._where.get(key)
        if before is not None and before is not slot:
            before.live.pop(key, None)
            before.drops.append(key)   # a stale copy: free it with that VM's next step
        self._where[key] = slot
        slot.live[key] = seq
        slot.live.move_to_end(key)
        while len(slot.live) > self._pool._limits.live_per_vm:
            oldest, _ = slot.live.popitem(last=False)
            del self._where[oldest]
            slot.drops.append(oldest)

    def _idle_or_drop(self, slot: Slot) -> None:
        with self._pool._lock:
            if len(self._idle) >= self._pool._limits.pool_size:
                self._forget(slot)
                return
            self._idle.append(slot)
            self._pool._park(slot)

    def _forget(self, slot: Slot) -> None:
        """Under the pool's lock: the slot is gone, with whatever it kept."""
        if slot in self._idle:
            self._idle.remove(slot)
        self._pool._unpark(slot)
        for key in slot.live:
            if self._where.get(key) is slot:
                del self._where[key]
        slot.live.clear()
        _dropped()


def _dropped() -> None:
    metrics.VMS.dec()
    metrics.VM_DROPS.inc()
