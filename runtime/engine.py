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
import secrets
from pathlib import Path
from typing import Any

from runtime import definitions, metrics
from runtime.clock import Clock, SystemClock
from runtime.errors import (
    BackstateError,
    BundleError,
    MachineError,
    RejectedByAuthorizerError,
    SandboxError,
)
from runtime.limits import RuntimeLimits
from runtime.pool import VMPool
from runtime.results import CommitHook, Delivery, LogLine, StepResult
from runtime.sandbox import hostcalls
from runtime.sandbox.fetch import Fetcher
from runtime.sandbox.prelude import prelude_source
from runtime.sandbox.vm import VM, Engine, Snapshot
from runtime.step import Step, log_line

__all__ = ["LoadedVersion", "Runtime", "RuntimeLimits"]

# One verdict per reader (None: allowed), and the lines allowRead printed.
ReadVerdicts = tuple[list[BackstateError | None], list[LogLine]]

JS_DIR = Path(__file__).resolve().parent.parent / "js_shims"
XSTATE_ESM = Path("node_modules") / "xstate" / "dist" / "xstate.web.js"
# @statebacked/machine's runtime functions (pinned in js_shims/package.json): one module without
# imports; its other module only exports types.
STATEBACKED_MACHINE_ESM = Path("node_modules") / "@statebacked" / "machine" / "es" / "rt.js"
ALLOWED_IMPORTS = ("npm:xstate", "xstate", "@statebacked/machine", "npm:@statebacked/machine")


class LoadedVersion:
    """A validated bundle: a snapshot of a VM that has it loaded, and its VMs."""

    def __init__(self, snapshot: Snapshot, pool: VMPool):
        self.snapshot = snapshot
        self.vms = pool.version(snapshot)


class Runtime:
    def __init__(self, limits: RuntimeLimits | None = None, *, clock: Clock | None = None,
                 fetcher: Fetcher | None = None, js_dir: Path = JS_DIR):
        self.limits = limits or RuntimeLimits()
        self.clock = clock or SystemClock()
        self.fetcher = fetcher or Fetcher()
        self.engine = Engine(host_call=hostcalls.handle)
        self._pool = VMPool(self.engine, self.limits)
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
        vm.compile_module((js_dir / STATEBACKED_MACHINE_ESM).read_text(),
                          "npm:@statebacked/machine")
        vm.compile_module('export * from "npm:@statebacked/machine";', "@statebacked/machine")
        vm.compile_module((js_dir / "upgrade.js").read_text(), "backstate:upgrade")  # harness.js
        return vm.snapshot()

    def compile(self, source: str) -> LoadedVersion:
        """`source` validated and loaded into a VM snapshot. Raises BundleError."""
        vm, shape = self._loaded(source, "bundle", self._harness)
        _check_shape(shape)
        return LoadedVersion(vm.snapshot(), self._pool)

    def validate_bundle(self, source: str) -> None:
        """Raise BundleError naming what is wrong, or return if `source` is a valid bundle."""
        _check_shape(self._loaded(source, "bundle", self._harness)[1])

    def describe_bundle(self, source: str) -> dict[str, Any]:
        """Validate `source` as `validate_bundle` does and return its machine's definition
        (the chart's structure, `runtime/definitions.py`). Raises BundleError."""
        vm, shape = self._loaded(source, "bundle", self._harness)
        _check_shape(shape)
        try:
            return definitions.checked(_call(vm, {"op": "definition"}))
        except MachineError as exc:
            raise _bundle_error(exc) from exc

    def load_module(self, source: str, *, name: str,
                    harness: str) -> tuple[LoadedVersion, dict[str, Any]]:
        """`source` registered as the module `name`, then `harness` (which imports it and
        installs `__bs_entry`): the loaded module, with its VMs, and the harness's answer to
        `inspect`. Raises BundleError. (Migration bundles load this way, see
        runtime/migrations.py.)"""
        vm, shape = self._loaded(source, name, harness)
        return LoadedVersion(vm.snapshot(), self._pool), shape

    def _loaded(self, source: str, name: str, harness: str) -> tuple[VM, dict[str, Any]]:
        """A VM cloned from the base with `source` registered as `name` and `harness`
        evaluated, under the bundle load limits, and the harness's `inspect` answer."""
        vm = self.engine.clone(self._base, self.limits.memory_bytes)
        vm.set_deadline(self.limits.load_s)
        try:
            vm.compile_module(source, name)
            vm.eval_module(harness, f"{name}-harness" if name != "bundle" else "harness")
            return vm, _call(vm, {"op": "inspect"})
        except MachineError as exc:
            raise _bundle_error(exc) from exc

    # -- steps ----------------------------------------------------------------------------
    # `instance_key` and `seq` name the instance and the sequence number its row is at (0 for a
    # creation): with warm VMs, the VM that keeps it live at that sequence serves the step.

    def create(self, version: LoadedVersion, *, instance_name: str,
               context: dict[str, Any] | None, auth_context: dict[str, Any],
               on_commit: CommitHook, instance_key: str | None = None,
               parent: dict[str, Any] | None = None) -> StepResult:
        """`parent`: the instance this one is a persistent child of (`_parent_arg`)."""
        args = {"op": "create", "instanceName": instance_name, "context": context,
                "authContext": auth_context, "parent": _parent_arg(parent)}
        return self._step(version, args, on_commit, instance_key, 0)

    def send(self, version: LoadedVersion, *, instance_name: str, state_json: str,
             event: str | dict[str, Any], auth_context: dict[str, Any], on_commit: CommitHook,
             cut_off: list[str] | None = None, trusted: bool = False,
             instance_key: str | None = None, seq: int | None = None,
             parent: dict[str, Any] | None = None) -> StepResult:
        delivery = {"event": event, "authContext": auth_context, "trusted": trusted}
        args = {"op": "send", "instanceName": instance_name, "state": state_json,
                "events": [delivery], "cutOff": list(cut_off or []),
                "parent": _parent_arg(parent)}
        return self._step(version, args, on_commit, instance_key, seq)

    def send_batch(self, version: LoadedVersion, *, instance_name: str, state_json: str,
                   deliveries: list[Delivery], on_commit: CommitHook,
                   cut_off: list[str] | None = None, instance_key: str | None = None,
                   seq: int | None = None, parent: dict[str, Any] | None = None) -> StepResult:
        """Several events for one instance in one step: each is its own transition, and one
        that fails fails alone (`StepResult.outcomes`); the commits of a reply are written
        together. The step raises only if the first event fails (then nothing of the batch
        ran) or for what would fail any step."""
        events = [_event_arg(d) for d in deliveries]
        args = {"op": "send", "instanceName": instance_name, "state": state_json,
                "events": events, "cutOff": list(cut_off or []), "parent": _parent_arg(parent)}
        return self._step(version, args, on_commit, instance_key, seq)

    def read(self, version: LoadedVersion, *, instance_name: str, state_json: str,
             auth_context: dict[str, Any]) -> list[LogLine]:
        """Raise RejectedByAuthorizerError unless allowRead lets `auth_context` read; the
        lines allowRead printed (on an error, they are its `logs`)."""
        reply = self._read(version, {"op": "read", "instanceName": instance_name,
                                     "state": state_json, "authContext": auth_context})
        return [log_line(line) for line in reply.get("logs", ())]

    def read_many(self, version: LoadedVersion, *, instance_name: str, state_json: str,
                  auth_contexts: list[dict[str, Any]]) -> ReadVerdicts:
        """allowRead's verdict for each of `auth_contexts` (None: allowed) in one call, and
        the lines it printed. A failure of the call itself raises, as `read` does."""
        reply = self._read(version, {
            "op": "readMany", "instanceName": instance_name, "state": state_json,
            "authContexts": auth_contexts, "now": self.clock.now_ms(),
            "seed": secrets.token_hex(32),
        })  # fmt: skip
        verdicts = [None if v is None else _read_error(v) for v in reply["verdicts"]]
        return verdicts, [log_line(line) for line in reply.get("logs", ())]

    def _read(self, version: LoadedVersion, args: dict[str, Any]) -> dict[str, Any]:
        taken = version.vms.acquire()
        step = Step(taken.vm, self.limits, self.clock, self.fetcher)
        try:
            reply = step.call(args)
        except BaseException as exc:
            if isinstance(exc, BackstateError):
                exc.logs = step.logs   # what allowRead printed before it failed
            version.vms.discard(taken)
            raise
        version.vms.release(taken)
        return reply

    def _step(self, version: LoadedVersion, args: dict[str, Any], on_commit: CommitHook,
              key: str | None, seq: int | None) -> StepResult:
        key = key if self.limits.warm else None
        taken = version.vms.acquire(key, seq)
        if key is not None:
            args = {**args, "key": key, "warm": taken.warm, "drop": taken.slot.take_drops()}
            if taken.warm:
                del args["state"]   # the VM has it live: nothing to parse or restore
        step = Step(taken.vm, self.limits, self.clock, self.fetcher)
        try:
            result = step.run(args, on_commit)
        except BaseException:
            version.vms.discard(taken)
            raise
        finally:
            metrics.STEP_SECONDS.observe(step.vm_s)
        version.vms.release(taken, keep=_kept(key, seq, result))
        return result


def _kept(key: str | None, seq: int | None, result: StepResult) -> tuple[str, int] | None:
    """What the VM keeps live after a step that settled cleanly: the instance at the sequence
    its commits brought it to (one per macrostep)."""
    if key is None or seq is None or result.error is not None or result.cut_off:
        return None
    if result.macrosteps and result.final.running:
        return None
    return key, seq + len(result.macrosteps)


def _read_error(info: dict[str, Any]) -> BackstateError:
    if info.get("code") in ("rejected-by-machine-authorizer", "authorizer-error"):
        return RejectedByAuthorizerError(info.get("message", "allowRead rejected the request"))
    return MachineError(info.get("message", "allowRead failed"), code=info.get("code"))


def _parent_arg(parent: dict[str, Any] | None) -> dict[str, Any] | None:
    """The harness's view of a persistent child's parent (the `instances.parent` column): where
    its sendParent, and its done.invoke if it was invoked, are sent."""
    if parent is None:
        return None
    return {"machineName": parent["machine"], "instanceName": parent["instance"],
            "invokeId": parent.get("invokeId")}


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


def _event_arg(delivery: Delivery) -> dict[str, Any]:
    arg = {"event": delivery.event, "authContext": delivery.auth_context,
           "trusted": delivery.trusted}
    if delivery.send_id is not None:
        arg["sendId"] = delivery.send_id
    return arg
