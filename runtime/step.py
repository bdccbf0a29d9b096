"""One step: an event (or a creation) taken by one instance, run to settled in one VM.

The loop, in the order that keeps State Backed's promise that no effect runs before the
transition that produced it is durably written:

    call the op (create / send)  ->  run promise jobs  ->  poll the VM
    -> commit the new macrosteps through the caller's hook (state, transition, timers)
    -> only then perform the fetches those macrosteps issued
    -> wait for a fetch to finish, an in-VM timer to fall due, or the window to end; repeat.

A step is settled when no invoked service is running. When the window ends first, the services
still running are cut off and reported, so the caller can deliver `error.platform.<id>` for each
before the instance's next event. A failure before anything was committed raises and changes
nothing; a failure after that ends the step at the last committed macrostep.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import secrets
import time
from typing import Any, Literal

from runtime.clock import Clock
from runtime.errors import (
    BackstateError,
    BundleError,
    ContextError,
    InvalidRequestError,
    MachineError,
    MemoryLimitError,
    RejectedByAuthorizerError,
    StackOverflowError,
    TimerSupersededError,
)
from runtime.limits import RuntimeLimits
from runtime.results import (
    CommitHook,
    EventOutcome,
    LogLine,
    Macrostep,
    PublicState,
    StepResult,
    Timer,
)
from runtime.sandbox.fetch import Fetcher
from runtime.sandbox.vm import VM

Reply = dict[str, Any]


class Step:
    def __init__(self, vm: VM, limits: RuntimeLimits, clock: Clock, fetcher: Fetcher):
        self.vm = vm
        self.limits = limits
        self.clock = clock
        self.fetcher = fetcher
        self.deadline = clock.monotonic() + limits.window_s
        self.inflight: dict[cf.Future[dict[str, Any]], int] = {}
        self.committed: list[Macrostep] = []
        self.logs: list[LogLine] = []
        self.running: list[str] = []
        self.outcomes: list[EventOutcome] = []
        self.vm_s = 0.0   # time in the VM: its calls and promise jobs (runtime/metrics.py)

    # -- single calls ---------------------------------------------------------------------
    def call(self, args: dict[str, Any]) -> Reply:
        """One op in the VM, bounded by the slice limit and what is left of the window."""
        if "seed" not in args and args.get("op") in ("create", "send", "read"):
            args = {**args, "now": self.clock.now_ms(), "seed": secrets.token_hex(32)}
        self.vm.set_deadline(min(self.limits.slice_s, max(self.remaining(), 0.001)))
        request = encode_request(args)
        started = time.perf_counter()
        try:
            answer = self.vm.call(request)
        finally:
            self.vm_s += time.perf_counter() - started
        reply: dict[str, Any] = json.loads(answer)
        if "error" in reply:
            self._collect_logs(reply["error"].get("logs", []))
        self._check_memory()
        if "error" in reply:
            raise _error_from_js(reply["error"])
        ok: Reply = reply["ok"]
        return ok

    def _check_memory(self) -> None:
        """Out of memory, JavaScript may catch the error, lose it in a promise nobody awaits,
        or fail to allocate the error object at all: trust the VM's count of refused
        allocations, not what the guest reported."""
        if self.vm.failed_allocations():
            raise MemoryLimitError(
                f"the machine ran out of memory (the VM's {self.vm.memory_limit >> 20} MB limit)")

    def remaining(self) -> float:
        return self.deadline - self.clock.monotonic()

    # -- the loop -------------------------------------------------------------------------
    def run(self, args: dict[str, Any], on_commit: CommitHook) -> StepResult:
        try:
            reply = self.call(args)     # create and send answer with their first poll
            self.outcomes = [_outcome(raw) for raw in reply.get("outcomes", [])]
            while True:
                jobs = self._jobs_before_commit(reply, on_commit)
                self._commit(reply, on_commit, last=not jobs and not reply["running"])
                self._release_fetches(reply)
                if jobs:
                    reply = self._poll()     # commit what the jobs did before anything else
                    continue
                if self._finished(reply):
                    break
                self._wait_and_deliver(reply)
                reply = self._poll()
        except BackstateError as exc:
            if not self.committed or not isinstance(exc, MachineError):
                self._cancel_fetches()
                exc.logs = list(self.logs)   # what it printed: the only trace a failed step leaves
                raise
            return self._end_early(exc)
        return StepResult(self.committed, self._cut_off(), self.logs, outcomes=self.outcomes)

    def _poll(self) -> Reply:
        return self.call({"op": "poll"})

    def _run_jobs(self) -> int:
        self.vm.set_deadline(min(self.limits.slice_s, max(self.remaining(), 0.001)))
        started = time.perf_counter()
        try:
            ran = self.vm.run_jobs()
        finally:
            self.vm_s += time.perf_counter() - started
        self._check_memory()
        return ran

    def _jobs_before_commit(self, reply: Reply, on_commit: CommitHook) -> int:
        """Run the promise jobs a reply left before committing its macrosteps: jobs cannot
        reach the world (their fetches wait for commits like any other), and when none ran
        and no service is running, the reply's last macrostep is the step's last commit.
        Jobs that fail still leave the reply's macrosteps committed, as if they ran after."""
        if "error" in reply:
            return 0
        try:
            return self._run_jobs()
        except BackstateError:
            self._commit(reply, on_commit, last=False)
            raise

    def _commit(self, reply: Reply, on_commit: CommitHook, *, last: bool) -> None:
        self.running = reply["running"]
        last = last and "error" not in reply
        raws = reply["macrosteps"]
        if len(self.committed) + len(raws) > self.limits.max_macrosteps:
            raise MachineError(f"the machine took more than {self.limits.max_macrosteps} "
                               "macrosteps for one event (does it send itself events "
                               "forever?)", code="too-many-macrosteps")
        done = len(self.committed)
        steps = [self._macrostep(raw, last=last and n == len(raws) - 1,
                                 delivery=self._delivery(done + n))
                 for n, raw in enumerate(raws)]
        if steps:
            on_commit(steps)
            self.committed.extend(steps)
        self._collect_logs(reply["logs"])
        if "error" in reply:
            raise _error_from_js(reply["error"])

    def _delivery(self, index: int) -> int:
        """The event of the batch that the step's `index`-th macrostep belongs to: each event's
        own count in turn (`outcomes`), the last event run owning the rest."""
        start = 0
        for n, outcome in enumerate(self.outcomes[:-1]):
            start += outcome.steps
            if index < start:
                return n
        return max(len(self.outcomes) - 1, 0)

    def _macrostep(self, raw: dict[str, Any], *, last: bool, delivery: int) -> Macrostep:
        state_json = json.dumps(raw["state"], separators=(",", ":"))
        context = raw["state"].get("context")
        if context is None:
            context = {}
        # The state's JSON (ASCII, as the context's would be) contains the context's: only a
        # state over the limit needs the context measured on its own.
        if len(state_json) > self.limits.context_bytes and len(
                json.dumps(context, separators=(",", ":"))) > self.limits.context_bytes:
            raise ContextError(f"the machine's context is over the {self.limits.context_bytes} "
                               "byte limit; the transition was not applied")
        now = self.clock.now_ms()
        view = raw["view"]
        logs = [log_line(line) for line in raw["logs"]]
        self.logs.extend(logs)
        return Macrostep(
            event=raw["event"],
            state_json=state_json,
            view=PublicState(view["value"], view["tags"], view["done"], view.get("publicContext")),
            context=context,
            timers=[Timer(t["id"], t["event"], int(t["delay"]), now + int(t["delay"]),
                          t.get("delivery")) for t in raw["timers"]],
            cancels=list(raw["cancels"]),
            logs=logs,
            clear_timers=bool(raw.get("clearTimers")),
            running=list(raw.get("running", [])),
            last=last,
            delivery=delivery,
        )

    def _release_fetches(self, reply: Reply) -> None:
        for request in reply["fetches"]:
            self.inflight[self.fetcher.submit(request)] = int(request["id"])
        aborted = set(reply["aborted"])
        for future, fid in list(self.inflight.items()):
            if fid in aborted:
                future.cancel()
                del self.inflight[future]

    def _finished(self, reply: Reply) -> bool:
        if not reply["running"]:
            return True
        if not self.inflight and reply["nextTimerDue"] is None:
            return True    # nothing in the VM can ever happen again: the window would only idle
        return self.remaining() <= 0

    def _wait_and_deliver(self, reply: Reply) -> None:
        timeout = self.remaining()
        due = reply["nextTimerDue"]
        if due is not None:
            timeout = min(timeout, max(0.0, (due - self.clock.now_ms()) / 1000.0))
        done = self.clock.wait(list(self.inflight), timeout)
        for future in done:
            self._deliver(future, self.inflight.pop(future))
        self.call({"op": "fireTimers", "now": self.clock.now_ms()})

    def _deliver(self, future: cf.Future[dict[str, Any]], fid: int) -> None:
        try:
            response = future.result()
        except Exception as exc:   # network errors and egress denials reject the JS promise
            self.call({"op": "fetchFailed", "id": fid, "message": _fetch_error(exc)})
            return
        self.call({"op": "fetchDone", "id": fid, "response": response})

    # -- endings --------------------------------------------------------------------------
    def _cut_off(self) -> list[str]:
        if not self.running:
            return []
        self._cancel_fetches()
        if self.vm.dead:
            return list(self.running)
        try:
            stopped: list[str] = self.call({"op": "stop"})["cutOff"]
            return stopped
        except BackstateError:
            return list(self.running)

    def _end_early(self, exc: BackstateError) -> StepResult:
        line = LogLine(self.clock.now_ms(), "stderr",
                       f"[backstate] the step stopped after {len(self.committed)} committed "
                       f"transition(s): {exc.message}")
        self.logs.append(line)
        return StepResult(self.committed, self._cut_off(), self.logs, error=exc.message,
                          outcomes=self.outcomes)

    def _cancel_fetches(self) -> None:
        for future in self.inflight:
            future.cancel()
        self.inflight.clear()

    def _collect_logs(self, lines: list[dict[str, Any]]) -> None:
        self.logs.extend(log_line(line) for line in lines)

def encode_request(args: dict[str, Any]) -> str:
    """JSON for the VM, with the persisted state spliced in as it is stored: re-encoding it as
    a string inside the request would have QuickJS unescape and parse it twice per event."""
    state = args.get("state")
    if not isinstance(state, str):
        return json.dumps(args)
    rest = json.dumps({k: v for k, v in args.items() if k != "state"})
    return '{"state":' + state + "," + rest[1:]


def _outcome(raw: dict[str, Any]) -> EventOutcome:
    if raw.get("superseded"):
        return EventOutcome(error=TimerSupersededError(
            "the timer was cancelled or re-armed by an earlier event of its batch"))
    if "error" in raw:
        return EventOutcome(error=_error_from_js(raw["error"]))
    return EventOutcome(steps=int(raw["steps"]))


def log_line(line: dict[str, Any]) -> LogLine:
    stream: Literal["stdout", "stderr"] = "stderr" if line.get("stream") == "stderr" else "stdout"
    return LogLine(int(line.get("ts") or 0), stream, str(line.get("text", "")))


def _fetch_error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _error_from_js(info: dict[str, Any]) -> BackstateError:
    code, message = info.get("code", "machine-error"), info.get("message", "the machine failed")
    if code in ("rejected-by-machine-authorizer", "authorizer-error"):
        return RejectedByAuthorizerError(message)
    if code == "invalid-event":
        return InvalidRequestError(message, parameter="event")
    if code == "invalid-context":
        return ContextError(message)
    if code == "invalid-bundle":
        return BundleError(message)
    if "InternalError: out of memory" in message:
        return MemoryLimitError(f"the machine ran out of memory: {message}")
    if "InternalError: stack overflow" in message:
        return StackOverflowError(f"the machine exhausted its call stack: {message}")
    return MachineError(message, code=code if code != "machine-error" else None)
