"""What the instance core reports of each step's output: the console lines a step printed,
whether it committed or failed, and the runtime's own lines about it.

The core wraps each call into the sandbox (`step`, `read`); the lines go to a sink (the
`LogWriter`, which stores them off the hot path) and never hold the step up. A step that is run
again (it lost a compare-and-set, or its timer was delivered elsewhere) reached nothing, so its
first run's lines are not kept: the second run prints them again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from runtime.clock import Clock
from runtime.errors import BackstateError, InstanceChangedError, MachineError, TimerSupersededError
from runtime.logs.entries import RUNTIME_PREFIX, LogEntry, LogOrigin, entries
from runtime.results import LogLine, StepResult

Sink = Callable[[list[LogEntry]], None]
R = TypeVar("R")
_RUN_AGAIN = (InstanceChangedError, TimerSupersededError)


class StepLogs:
    def __init__(self, sink: Sink | None, clock: Clock):
        self._sink = sink
        self._clock = clock

    def step(self, origin: LogOrigin, run: Callable[[], StepResult], *,
             failed_origin: LogOrigin | None = None, keep_failure: bool = True) -> StepResult:
        """`run()`, a create or a send (of one event or a batch); its lines kept whatever it
        ends with, those of a failure as `failed_origin`'s (default: `origin`; an upgrade that
        fails leaves the instance on the version it ran). Without `keep_failure` a step that
        raises leaves no lines: the caller runs its events again (a batch whose first event
        failed runs each alone)."""
        if self._sink is None:
            return run()
        try:
            result = run()
        except _RUN_AGAIN:
            raise
        except BackstateError as exc:
            if keep_failure:
                self._failed(self._sink, failed_origin or origin, exc)
            raise
        # An event of a batch that failed alone: its lines are among the step's, and it is
        # said why it changed nothing, as for a step of one event.
        failed = [self._failure_line(o.error) for o in result.outcomes
                  if isinstance(o.error, MachineError)]
        lines = [*result.logs, *failed]
        if lines:
            self._sink(entries(origin, lines))
        return result

    def read(self, origin: LogOrigin, run: Callable[[], R],
             lines_of: Callable[[R], Sequence[LogLine]]) -> R:
        """`run()`, an `allowRead` (or several); `lines_of` its result: the lines it printed."""
        if self._sink is None:
            return run()
        try:
            result = run()
        except BackstateError as exc:
            self._failed(self._sink, origin, exc)
            raise
        lines = lines_of(result)
        if lines:
            self._sink(entries(origin, lines))
        return result

    def runtime(self, origin: LogOrigin, text: str) -> None:
        """A line of the runtime's own about this instance, on stderr."""
        if self._sink is not None:
            line = LogLine(self._clock.now_ms(), "stderr", RUNTIME_PREFIX + text)
            self._sink(entries(origin, [line]))

    def _failed(self, sink: Sink, origin: LogOrigin, exc: BackstateError) -> None:
        lines = list(exc.logs)
        if isinstance(exc, MachineError):  # the machine failed, not a caller or an authorizer
            lines.append(self._failure_line(exc))
        if lines:
            sink(entries(origin, lines))

    def _failure_line(self, exc: MachineError) -> LogLine:
        return LogLine(self._clock.now_ms(), "stderr",
                       f"{RUNTIME_PREFIX}the step failed and changed nothing: {exc.message}")
