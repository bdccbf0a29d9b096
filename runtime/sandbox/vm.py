"""QuickJS-NG on wasmtime: the only module that touches wasmtime.

Design log (what was tried and why):

* Every event starts from a memory snapshot of a VM that already has the prelude, xstate and
  the version's bundle loaded, so nothing leaks between instances, versions or tenants through
  JS globals. A VM is a new instance with the snapshot written into it (`Snapshot.restore`),
  or a used one whose memory was made byte-identical to it again (`Snapshot.reset`, much
  cheaper than a new instance's page faults). A VM that trapped may be in any state, and a
  grown memory cannot shrink: those are discarded instead.
* Limits are enforced by wasmtime, not QuickJS. `Store.set_limits(memory_size=...)` makes the
  guest's malloc fail, which QuickJS turns into a catchable `InternalError: out of memory`
  (JS_SetMemoryLimit is useless under WASI: malloc_usable_size reports nothing). Epoch
  interruption stops everything, native regex backtracking and sort included; the instance
  is then dead and discarded.
* Our own build of the guest (wasm/build.sh) puts a 1 MiB C stack first, so overflow traps
  instead of corrupting the heap, and adds the synchronous import env.host_call.
* Calls go through `wasmtime_func_call_unchecked` and single-export lookups: wasmtime-py's
  `Func.__call__` re-reads the function type on every call and `Instance.exports()` wraps all
  exports eagerly. wasmtime is pinned in pyproject.toml for that reason.
* ctypes releases the GIL during a wasm call, so VMs on different threads run in parallel and
  a looping machine never blocks the server's event loop. Only calls that may run guest code
  for long do so, though (`_GIL_KEPT`): an event makes many short calls (malloc, free,
  deadlines, small copies), and under load each release of the GIL is a chance
  for another thread to take it and keep it until its own next release, so each cost a wait
  rather than the microsecond the call itself takes.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _bindings
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern

from runtime.errors import (
    MachineError,
    MemoryLimitError,
    SandboxError,
    ScriptError,
    StackOverflowError,
    TimeLimitError,
)
from runtime.sandbox.snapshot import Snapshot

__all__ = ["VM", "Engine", "Snapshot"]

WASM_PATH = Path(__file__).parent / "wasm" / "sandbox.wasm"
TICK_S = 0.005                # epoch tick: deadlines are enforced to within one tick
JS_EVAL_SCRIPT, JS_EVAL_MODULE, JS_EVAL_COMPILE_ONLY = 0, 1, 1 << 5
GUEST_STACK_LIMIT = 768 << 10  # QuickJS's own RangeError comes before the 1 MiB C stack ends
GC_HEADROOM = 16 << 20         # bytes a cloned VM may allocate before QuickJS collects

HostCall = Callable[[str], str]

# The same wasmtime functions, called without releasing the GIL (ctypes.PyDLL): for calls that
# are over in microseconds. See the module docstring.
_KEEP_GIL = ctypes.PyDLL(ffi.dll._name, handle=ffi.dll._handle)


def _gil_kept(name: str) -> Any:
    bound = getattr(_bindings, "_" + name)
    fn = getattr(_KEEP_GIL, name)
    fn.argtypes, fn.restype = bound.argtypes, bound.restype
    return fn


_call_short = _gil_kept("wasmtime_func_call_unchecked")
_memory_data = _gil_kept("wasmtime_memory_data")
_memory_size = _gil_kept("wasmtime_memory_data_size")
_set_epoch_deadline = _gil_kept("wasmtime_context_set_epoch_deadline")
_copy_small = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.c_size_t)(ctypes._memmove_addr)  # type: ignore[attr-defined]
# Guest exports that return in microseconds: no JavaScript runs in them.
_GIL_KEPT = frozenset({"malloc", "free", "sb_last_error", "sb_memory_used"})


class _Ticker:
    """One thread per process advances the engine epoch; stores set deadlines in ticks."""

    def __init__(self, engine: wasmtime.Engine):
        self._engine = engine
        threading.Thread(target=self._run, name="wasm-epoch", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(TICK_S)
            self._engine.increment_epoch()


_current = threading.local()   # the VM whose export runs on this thread, for env.host_call


class Engine:
    """Process-wide: the compiled guest, the linker with its imports, the epoch ticker."""

    def __init__(self, host_call: HostCall | None = None, *, wasm_path: Path = WASM_PATH,
                 cache_dir: Path | None = None):
        self.host_call = host_call or _no_host_calls
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        cfg.memory_may_move = False   # so a VM reads its memory's base once (VM._base)
        self.engine = wasmtime.Engine(cfg)
        self.module = _load_module(self.engine, wasm_path, cache_dir or _default_cache_dir())
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        self.linker.define_func("env", "host_call", wasmtime.FuncType([i32, i32, i32], [i32]),
                                self._host_call)
        self.signatures: dict[str, tuple[list[bool], bool | None]] = {}
        _Ticker(self.engine)

    def new_vm(self, memory_limit: int = 128 << 20) -> VM:
        """A blank VM: QuickJS runtime and context, nothing evaluated yet."""
        vm = VM(self, memory_limit)
        vm.boot()
        return vm

    def clone(self, snapshot: Snapshot, memory_limit: int = 128 << 20) -> VM:
        """A fresh VM whose memory is a copy of `snapshot`."""
        vm = VM(self, memory_limit)
        vm.restore(snapshot)
        return vm

    def _host_call(self, req_ptr: int, req_len: int, out_len_ptr: int) -> int:
        vm: VM = _current.vm
        request = vm.read_bytes(req_ptr, req_len).decode("utf-8", "replace")
        try:
            response = self.host_call(request).encode()
        except Exception as exc:   # never leak host internals into the guest
            response = json.dumps({"error": type(exc).__name__}).encode()
        ptr = vm.raw_call("malloc", max(len(response), 1))
        if not ptr:
            return 0                # the guest throws InternalError("host call failed")
        vm.write_bytes(ptr, response)
        vm.write_bytes(out_len_ptr, struct.pack("<i", len(response)))
        return int(ptr)


class VM:
    """One wasm instance holding one QuickJS runtime and context. A VM cloned from a snapshot
    serves one step, then is reset to that snapshot (`reset`) or discarded. Every call is
    bounded by the deadline set with `set_deadline`."""

    def __init__(self, engine: Engine, memory_limit: int):
        self._engine = engine
        self.store = wasmtime.Store(engine.engine)
        self.store.set_wasi(wasmtime.WasiConfig())       # no preopens, env, args or stdio
        self.store.set_limits(memory_size=memory_limit)
        self.store.set_epoch_deadline(1 << 40)
        self.memory_limit = memory_limit
        self._instance = engine.linker.instantiate(self.store, engine.module)
        self._exports: dict[str, Any] = {}
        self._memory = self._export("memory")
        data = _memory_data(self.store._context(), ctypes.byref(self._memory._memory))
        self._base_address = ctypes.addressof(data.contents)   # fixed: memory_may_move is off
        self.scratch = 0
        self.dead: str | None = None
        self._origin: Snapshot | None = None   # what `reset` returns this VM to

    # -- lifecycle ------------------------------------------------------------------------
    def boot(self) -> None:
        self.raw_call("_initialize")
        self.scratch = self.raw_call("malloc", 12)
        self.write_bytes(self.scratch, bytes(12))
        if self.raw_call("sb_init", GUEST_STACK_LIMIT, self.scratch) != 0:
            raise SandboxError("QuickJS failed to start")

    def restore(self, snapshot: Snapshot) -> None:
        if snapshot.size > self.memory_limit:
            raise MemoryLimitError(
                f"the machine needs {snapshot.size >> 20} MB at rest, over the "
                f"{self.memory_limit >> 20} MB memory limit")
        have = self._memory.data_len(self.store)
        if snapshot.size > have:
            self._memory.grow(self.store, (snapshot.size - have) // 65536)
        snapshot.restore(self._base())
        self.scratch = snapshot.scratch
        self._origin = snapshot

    def reset(self) -> bool:
        """Make a used VM byte-identical to a fresh clone of the snapshot it was cloned from,
        reusing its resident pages (a fresh instance page-faults its whole memory in, which
        costs many times more). Linear memory is an instance's only mutable state besides the shadow
        stack pointer, which is back at its initial value whenever no export is running.
        Refuses (False) a VM that was not cloned, trapped or grew: a grown memory cannot shrink
        back to the snapshot's."""
        snapshot = self._origin
        if snapshot is None or self.dead or self.linear_memory() != snapshot.size:
            return False
        snapshot.reset(self._base())
        _set_epoch_deadline(self.store._context(), 1 << 40)
        return True

    def collect_garbage(self, headroom: int = GC_HEADROOM) -> None:
        self.raw_call("sb_gc", headroom)

    def snapshot(self) -> Snapshot:
        """Only valid at a quiescent point (no export running): then the shadow stack pointer,
        the one mutable wasm global, is back at its initial value."""
        self.collect_garbage()
        size = self._memory.data_len(self.store)
        return Snapshot.of(ctypes.string_at(self._base(), size), self.scratch)

    def set_deadline(self, seconds: float) -> None:
        _set_epoch_deadline(self.store._context(), max(1, int(seconds / TICK_S) + 1))

    # -- JavaScript -----------------------------------------------------------------------
    def eval(self, code: str, filename: str = "<eval>") -> str:
        """Evaluate a script; returns String(result)."""
        return self._eval(code, filename, JS_EVAL_SCRIPT)

    def compile_module(self, code: str, name: str) -> None:
        """Register an ES module under `name` without evaluating it: a later
        `import ... from name` links against it, so no loader or filesystem is needed."""
        self._eval(code, name, JS_EVAL_MODULE | JS_EVAL_COMPILE_ONLY)

    def eval_module(self, code: str, name: str) -> None:
        """Link and evaluate a module (and what it imports), then run the jobs it queued."""
        self._eval(code, name, JS_EVAL_MODULE)
        self.run_jobs()

    def call(self, arg: str) -> str:
        """`globalThis.__bs_entry(arg)`: the one entry point the harness installs."""
        data = arg.encode()
        ptr = self._alloc(data)
        try:
            return self._result(self.raw_call("sb_call", ptr, len(data)))
        finally:
            self._free(ptr)

    def run_jobs(self) -> int:
        n = int(self.raw_call("sb_run_jobs"))
        if n < 0:
            self._result(self.raw_call("sb_last_error"))
        return n

    def failed_allocations(self) -> int:
        """Allocations the memory cap refused since this VM left its snapshot: JavaScript may
        have caught the error they raised, or lost it in a promise nobody awaits."""
        return int(struct.unpack("<i", self.read_bytes(self.scratch + 8, 4))[0])

    def memory_used(self) -> int:
        return int(self.raw_call("sb_memory_used"))

    def linear_memory(self) -> int:
        return int(_memory_size(self.store._context(), ctypes.byref(self._memory._memory)))

    # -- plumbing -------------------------------------------------------------------------
    def _eval(self, code: str, filename: str, flags: int) -> str:
        src, name = code.encode(), filename.encode()
        ptr = self._alloc(src + b"\0" + name + b"\0")
        try:
            return self._result(self.raw_call("sb_eval", ptr, len(src), ptr + len(src) + 1, flags))
        finally:
            self._free(ptr)

    def _alloc(self, data: bytes) -> int:
        ptr = int(self.raw_call("malloc", max(len(data), 1)))
        if not ptr:
            raise MemoryLimitError(
                f"out of memory: the VM's {self.memory_limit >> 20} MB limit was reached")
        _copy_small(self._base() + ptr, data, len(data))
        return ptr

    def _free(self, ptr: int) -> None:
        if not self.dead:
            self.raw_call("free", ptr)

    def _result(self, ptr: int) -> str:
        status, length = struct.unpack("<ii", self.read_bytes(self.scratch, 8))
        if status == 2 or not ptr:
            raise MemoryLimitError(
                f"out of memory: the VM's {self.memory_limit >> 20} MB limit was reached")
        text = self.read_bytes(ptr, length).decode("utf-8", "replace")
        self.raw_call("free", ptr)
        if status == 1:
            raise _js_error(text)
        return text

    def _base(self) -> int:
        return self._base_address

    def read_bytes(self, ptr: int, length: int) -> bytes:
        return ctypes.string_at(self._base() + ptr, length)

    def write_bytes(self, ptr: int, data: bytes) -> None:
        _copy_small(self._base() + ptr, data, len(data))

    def _export(self, name: str) -> Any:
        item = self._exports.get(name)
        if item is None:
            ext = ffi.wasmtime_extern_t()
            raw = name.encode()
            if not ffi.wasmtime_instance_export_get(
                    self.store._context(), ctypes.byref(self._instance._instance), raw, len(raw),
                    ctypes.byref(ext)):
                raise KeyError(name)
            item = self._exports[name] = wrap_extern(ext)
        return item

    def raw_call(self, name: str, *args: int) -> int:
        """Call a guest export through the unchecked fast path. A trap kills the VM."""
        if self.dead:
            raise SandboxError(f"the VM is no longer usable: {self.dead}")
        func = self._export(name)
        params, result64 = self._signature(name, func)
        buf = (ffi.wasmtime_val_raw_t * max(len(args), 1))()
        for i, arg in enumerate(args):
            if params[i]:
                buf[i].i64 = arg
            else:
                buf[i].i32 = arg
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        previous, _current.vm = getattr(_current, "vm", None), self
        call = _call_short if name in _GIL_KEPT else ffi.wasmtime_func_call_unchecked
        try:
            err = call(
                self.store._context(), ctypes.byref(func._func), buf, len(buf), ctypes.byref(trap))
        finally:
            _current.vm = previous
        if err:
            raise SandboxError(str(wasmtime.WasmtimeError._from_ptr(err)))
        if trap:
            raise self._die(str(wasmtime.Trap._from_ptr(trap)))
        if result64 is None:
            return 0
        value = buf[0].i64 if result64 else buf[0].i32
        return int(value) & 0xFFFFFFFF if not result64 else int(value)

    def _signature(self, name: str, func: Any) -> tuple[list[bool], bool | None]:
        sig = self._engine.signatures.get(name)
        if sig is None:
            ty = func.type(self.store)
            sig = ([str(p) == "i64" for p in ty.params],
                   None if not ty.results else str(ty.results[0]) == "i64")
            self._engine.signatures[name] = sig
        return sig

    def _die(self, trap: str) -> SandboxError:
        lines = [line for line in trap.strip().splitlines() if line.strip()]
        self.dead = lines[-1] if lines else trap
        if "interrupt" in trap:
            return TimeLimitError("the machine ran past its time limit and was stopped")
        if "call stack exhausted" in trap:
            return StackOverflowError("the machine exhausted its call stack (runaway recursion)")
        return SandboxError(f"the VM trapped: {self.dead}")


def _js_error(text: str) -> MachineError:
    message, _, stack = text.partition("\n")
    if "out of memory" in message:
        return MemoryLimitError(f"out of memory in the machine: {message}")
    if "stack overflow" in message:
        return StackOverflowError(f"the machine exhausted its call stack: {message}")
    return ScriptError(message, stack)


def _no_host_calls(request: str) -> str:
    return json.dumps({"error": "no host calls are available"})


def _default_cache_dir() -> Path:
    return Path(os.environ.get("BACKSTATE_CACHE_DIR", Path.home() / ".cache" / "backstate"))


def _load_module(engine: wasmtime.Engine, wasm_path: Path, cache_dir: Path) -> wasmtime.Module:
    """Compiling the guest takes a second or so; the compiled artifact is cached on disk,
    keyed by the wasm bytes and the wasmtime version. Only artifacts this process family wrote
    are ever loaded."""
    wasm = wasm_path.read_bytes()
    key = hashlib.sha256(wasm + importlib.metadata.version("wasmtime").encode()).hexdigest()[:32]
    cached = cache_dir / f"sandbox-{key}.cwasm"
    if cached.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError:
            cached.unlink(missing_ok=True)
    module = wasmtime.Module(engine, wasm)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(module.serialize())
        tmp.replace(cached)
    except OSError:
        pass   # a read-only home only costs the compile time
    return module
