"""Machine versions and steps: the Python API the server calls.

    rt = Runtime()
    version = rt.compile(bundle_source)                  # validate, load, snapshot
    result = rt.create(version, instance_name="i", context={...}, auth_context={...},
                       on_commit=commit)                 # allowWrite(initialization), start, settle
    rt.read(version, instance_name="i", state_json=..., auth_context=...)   # allowRead
    result = rt.send(version, instance_name="i", state_json=..., event="TOGGLE", ...)

Every call is blocking (it runs wasm and may wait on fetches for the whole settle window):
call it from a worker thread. The step loop itself lives in `runtime/step.py`; which versions
stay compiled is the caller's choice (`runtime/instances/versions.py` keeps the server's).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from runtime.clock import Clock, SystemClock
from runtime.errors import BundleError, MachineError, SandboxError
from runtime.limits import RuntimeLimits
from runtime.results import CommitHook, StepResult
from runtime.sandbox import hostcalls
from runtime.sandbox.fetch import Fetcher
from runtime.sandbox.prelude import prelude_source
from runtime.sandbox.vm import VM, Engine, Snapshot
from runtime.step import Step

__all__ = ["LoadedVersion", "Runtime", "RuntimeLimits"]

JS_DIR = Path(__file__).resolve().parent.parent / "js_shims"
XSTATE_ESM = Path("node_modules") / "xstate" / "dist" / "xstate.web.js"
ALLOWED_IMPORTS = ("npm:xstate", "xstate")


class LoadedVersion:
    """A validated bundle, with a snapshot of a VM that has it loaded and a pool of VMs."""

    def __init__(self, snapshot: Snapshot, engine: Engine, limits: RuntimeLimits):
        self.snapshot = snapshot
        self._engine = engine
        self._limits = limits
        self._idle: list[VM] = []
        self._lock = threading.Lock()

    def acquire(self) -> VM:
        """A VM byte-identical to a fresh clone of this version's snapshot."""
        with self._lock:
            vm = self._idle.pop() if self._idle else None
        return vm or self._engine.clone(self.snapshot, self._limits.memory_bytes)

    def release(self, vm: VM) -> None:
        """Reset right away, so no instance's data lingers in an idle VM."""
        if not vm.reset():
            return
        with self._lock:
            if len(self._idle) < self._limits.pool_size:
                self._idle.append(vm)


class Runtime:
    def __init__(self, limits: RuntimeLimits | None = None, *, clock: Clock | None = None,
                 fetcher: Fetcher | None = None, js_dir: Path = JS_DIR):
        self.limits = limits or RuntimeLimits()
        self.clock = clock or SystemClock()
        self.fetcher = fetcher or Fetcher()
        self.engine = Engine(host_call=hostcalls.handle)
        self._harness = (js_dir / "harness.js").read_text()
        self._base = self._build_base(js_dir)

    def close(self) -> None:
        """Release what outlives a step: the fetcher's connections and threads."""
        self.fetcher.close()

    # -- versions -------------------------------------------------------------------------
    def _build_base(self, js_dir: Path) -> Snapshot:
        """Prelude and xstate, evaluated once per process; every version starts from here."""
        vm = self.engine.new_vm(self.limits.memory_bytes)
        vm.set_deadline(30.0)
        vm.eval(prelude_source(js_dir), "prelude.js")
        vm.compile_module((js_dir / XSTATE_ESM).read_text(), "npm:xstate")
        vm.compile_module('export * from "npm:xstate";', "xstate")
        vm.eval_module('import "npm:xstate";', "<xstate>")
        vm.compile_module((js_dir / "upgrade.js").read_text(), "backstate:upgrade")  # harness.js
        return vm.snapshot()

    def compile(self, source: str) -> LoadedVersion:
        """`source` validated and loaded into a VM snapshot. Raises BundleError."""
        return LoadedVersion(self._snapshot_bundle(source), self.engine, self.limits)

    def validate_bundle(self, source: str) -> None:
        """Raise BundleError naming what is wrong, or return if `source` is a valid bundle."""
        self._snapshot_bundle(source)

    def load_module(self, source: str, *, name: str,
                    harness: str) -> tuple[Snapshot, dict[str, Any]]:
        """`source` registered as the module `name`, then `harness` (which imports it and
        installs `__bs_entry`) evaluated, in a VM cloned from the base under the bundle load
        limits: the VM's snapshot and the harness's answer to `inspect`. Raises BundleError.
        (Migration bundles load this way, see runtime/migrations.py.)"""
        vm = self.engine.clone(self._base, self.limits.memory_bytes)
        vm.set_deadline(self.limits.load_s)
        try:
            vm.compile_module(source, name)
            vm.eval_module(harness, f"{name}-harness")
            shape = _call(vm, {"op": "inspect"})
        except MachineError as exc:
            raise _bundle_error(exc) from exc
        return vm.snapshot(), shape

    def _snapshot_bundle(self, source: str) -> Snapshot:
        vm = self.engine.clone(self._base, self.limits.memory_bytes)
        vm.set_deadline(self.limits.load_s)
        try:
            vm.compile_module(source, "bundle")
            vm.eval_module(self._harness, "harness")
            shape = _call(vm, {"op": "inspect"})
        except MachineError as exc:
            raise _bundle_error(exc) from exc
        _check_shape(shape)
        return vm.snapshot()

    # -- steps ----------------------------------------------------------------------------
    def create(self, version: LoadedVersion, *, instance_name: str,
               context: dict[str, Any] | None, auth_context: dict[str, Any],
               on_commit: CommitHook) -> StepResult:
        args = {"op": "create", "instanceName": instance_name, "context": context,
                "authContext": auth_context}
        return self._step(version, args, on_commit)

    def send(self, version: LoadedVersion, *, instance_name: str, state_json: str,
             event: str | dict[str, Any], auth_context: dict[str, Any], on_commit: CommitHook,
             cut_off: list[str] | None = None, trusted: bool = False) -> StepResult:
        args = {"op": "send", "instanceName": instance_name, "state": state_json, "event": event,
                "authContext": auth_context, "cutOff": list(cut_off or []), "trusted": trusted}
        return self._step(version, args, on_commit)

    def read(self, version: LoadedVersion, *, instance_name: str, state_json: str,
             auth_context: dict[str, Any]) -> None:
        """Raise RejectedByAuthorizerError unless allowRead lets `auth_context` read."""
        args = {"op": "read", "instanceName": instance_name, "state": state_json,
                "authContext": auth_context}
        vm = version.acquire()
        try:
            Step(vm, self.limits, self.clock, self.fetcher).call(args)
        finally:
            version.release(vm)

    def _step(self, version: LoadedVersion, args: dict[str, Any],
              on_commit: CommitHook) -> StepResult:
        vm = version.acquire()
        try:
            return Step(vm, self.limits, self.clock, self.fetcher).run(args, on_commit)
        finally:
            version.release(vm)


def _call(vm: VM, args: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(vm.call(json.dumps(args)))
    if "error" in reply:
        raise MachineError(reply["error"]["message"], code=reply["error"]["code"])
    ok: dict[str, Any] = reply["ok"]
    return ok


def _bundle_error(exc: MachineError) -> BundleError:
    message = str(exc)
    if "could not load module" in message:
        name = message.split("could not load module", 1)[1].strip(" '\"")
        name = name.split("'")[0]
        return BundleError(
            f"the bundle imports '{name}', which is not available in the sandbox; bundles may "
            f"import only {' or '.join(ALLOWED_IMPORTS)} (bundle everything else into the file)",
            parameter="code")
    if isinstance(exc, SandboxError):
        return BundleError(f"evaluating the bundle failed: {message}", parameter="code")
    if message.startswith("SyntaxError"):
        return BundleError(f"the bundle is not a valid ES module: {message}", parameter="code")
    return BundleError(f"evaluating the bundle threw {message}", parameter="code")


def _check_shape(shape: dict[str, Any]) -> None:
    if not shape["isMachine"] or not shape["hasDefinition"]:
        raise BundleError("the bundle's default export must be an XState 4 machine "
                          "(export default createMachine({...}))", parameter="code")
    for name in ("allowRead", "allowWrite"):
        if shape[name] != "function":
            raise BundleError(f"the bundle must export a function named {name} "
                              f"(found {shape[name]})", parameter="code")
