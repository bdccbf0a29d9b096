"""Plain values a step hands back to its caller: what to persist, what to show, what to schedule.

Nothing here touches the sandbox; the server persists these as they are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = Any
StateValue = str | dict[str, Any]


@dataclass(frozen=True)
class PublicState:
    """What API callers see of an instance: State Backed's `State` minus `ts`."""

    value: StateValue
    tags: list[str]
    done: bool
    public_context: dict[str, Any] | None

    def view(self) -> dict[str, Any]:
        """The view as stored with the instance and shown to callers (see `InstanceState`):
        `publicContext` only when the context has a `public` key."""
        out: dict[str, Any] = {"state": self.value, "tags": list(self.tags), "done": self.done}
        if self.public_context is not None:
            out["publicContext"] = self.public_context
        return out


@dataclass(frozen=True)
class InstanceState:
    """An instance at one committed state, as callers see it: State Backed's `State`."""

    ts: int   # epoch ms when this state was committed, strictly increasing per instance
    view: dict[str, Any]   # `PublicState.view()`

    def wire(self) -> dict[str, Any]:
        return {"ts": self.ts, **self.view}


@dataclass(frozen=True)
class Timer:
    """A delayed send (or `after`) armed by a macrostep, due at an absolute time."""

    send_id: str
    event: dict[str, Any]
    delay_ms: int
    due_at_ms: int
    # None for the machine's own delayed event; otherwise an outbox entry for another instance
    # (runtime/instances/outbox.py): {"kind": "send", "machine", "instance", "trusted"?} or
    # {"kind": "create", "machine", "instance", "version", "context", "invokeId"}.
    delivery: dict[str, Any] | None = None


@dataclass(frozen=True)
class LogLine:
    ts_ms: int
    stream: Literal["stdout", "stderr"]
    text: str


@dataclass(frozen=True)
class Macrostep:
    """One committed unit: the event taken and the state it led to.

    `state_json` is the persisted state (XState's `State.toJSON()` with actions stripped, so a
    restore never re-runs effects); `timers` and `cancels` are the durable-timer changes that
    must commit in the same transaction; `logs` is the console output produced while computing
    this macrostep. Apply them in this order: `clear_timers`, then `cancels`, then `timers`
    (a timer whose send id is already pending replaces it)."""

    event: dict[str, Any]
    state_json: str
    view: PublicState
    context: dict[str, Any]
    timers: list[Timer] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    clear_timers: bool = False   # the machine reached its final state: drop all its timers
    # Invoked services running after this macrostep. Persist them with the state: if the step
    # never finishes (a crash), they are the services to fail (`cut_off`) before the next event.
    running: list[str] = field(default_factory=list)
    # The step commits nothing after this macrostep: its commit may also end the step's hold
    # on the instance (the server releases its lease in the same transaction).
    last: bool = False
    # Set on an upgrade's `statebacked.upgrade` transition (runtime/instances/upgrades.py): the
    # version the instance moves to, switched in this macrostep's transaction.
    upgrade_to: uuid.UUID | None = None
    # Which event of the step's batch this macrostep belongs to (its index in the deliveries);
    # the last event run owns the macrosteps after the others' (see `StepResult.outcomes`).
    delivery: int = 0

    @property
    def state(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.state_json)
        return parsed


@dataclass(frozen=True)
class Delivery:
    """One event for an instance: who sends it, and whether it is the machine's own (a timer:
    internal event types allowed, no authorizer). A due timer's delivery names its send id: an
    earlier event of the same batch that cancels or re-arms it supersedes it."""

    event: dict[str, Any]
    auth_context: dict[str, Any]
    trusted: bool = False
    send_id: str | None = None


@dataclass(frozen=True)
class EventOutcome:
    """What one event of a step did: the macrosteps it committed (counted in the step's order),
    or why it failed (it changed nothing)."""

    steps: int = 0
    error: Exception | None = None


@dataclass(frozen=True)
class StepResult:
    """Everything one create/send produced, in order.

    `cut_off` lists the invoked services still running when the settle window ended (or when
    the step stopped early): before the instance's next event, the caller delivers
    `error.platform.<id>` for each (pass them as `send(..., cut_off=...)`)."""

    macrosteps: list[Macrostep]
    cut_off: list[str]
    logs: list[LogLine]
    error: str | None = None   # set when a failure ended the step after something committed
    # One per event of a batch that ran (`Runtime.send_batch`), in order; the last event run
    # owns the macrosteps after the others' (the services it left running settle after it).
    # Events past the end were not run: an earlier one left a service running.
    outcomes: list[EventOutcome] = field(default_factory=list)

    @property
    def ignored(self) -> bool:
        """True when the machine took no transition at all (e.g. an event delivered to an
        instance already in its final state): nothing to commit, the state is unchanged."""
        return not self.macrosteps

    @property
    def final(self) -> Macrostep:
        if not self.macrosteps:
            raise LookupError("the step produced no macrostep (see StepResult.ignored)")
        return self.macrosteps[-1]


# Called with the new macrosteps of each reply of the VM (one or more), in order, before any
# effect they produced is released (fetches performed, timers fired): the caller may write them
# together. Raising aborts the step: the VM is discarded, no effect runs.
CommitHook = Callable[[list[Macrostep]], None]
