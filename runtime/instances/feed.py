"""Where subscribers learn of every committed state.

Each commit of a step publishes one `StateCommitted`, in commit order per instance, from the
step thread that committed it, after the transaction is durable and before the step's effects
run. Listeners must be quick and thread-safe (hand the value to an event loop or a queue);
one that raises is logged, and the step and the other listeners go on. With no listener, a
commit pays one attribute read.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from runtime.results import InstanceState

log = logging.getLogger("backstate.feed")


@dataclass(frozen=True)
class StateCommitted:
    """One committed state of an instance: enough to show it (`state`) and to authorize a
    reader (`version_id`, `state_json`) without reading the row back."""

    instance_id: uuid.UUID
    version_id: uuid.UUID
    seq: int
    state: InstanceState
    state_json: str


Listener = Callable[[StateCommitted], None]


class Feed:
    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every committed state from now on; returns the unsubscribe."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def publish(self, committed: StateCommitted) -> None:
        for listener in self._listeners:
            try:
                listener(committed)
            except Exception:  # one broken listener must not fail a committed step
                log.exception("a committed-state listener failed")
