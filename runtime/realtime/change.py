"""One committed state of an instance as the realtime feed carries it."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import BackstateError
from runtime.instances.feed import StateCommitted
from runtime.store.changes import Row

# allowRead's verdict on one state for one auth context: None (allowed) or the error to report.
Verdict = BackstateError | None


@dataclass(eq=False)
class Change:
    """A committed state: `ts` and `view` are what subscribers see (the same `ts` HTTP
    answers with), `version_id` and `state_json` what `allowRead` needs.

    One object per state per process, shared by every subscriber: it caches its frame and the
    verdicts of `allowRead` (by auth context, see `readers.py`)."""

    instance_id: uuid.UUID
    seq: int
    ts: int
    version_id: uuid.UUID
    view: dict[str, Any]
    state_json: str
    verdicts: dict[str, asyncio.Future[Verdict]] = field(default_factory=dict, repr=False)
    _frame: str | None = field(default=None, repr=False)

    @classmethod
    def committed(cls, c: StateCommitted) -> Change:
        return cls(c.instance_id, c.seq, c.state.ts, c.version_id, c.state.view, c.state_json)

    @classmethod
    def logged(cls, row: Row) -> Change:
        return cls(row.instance_id, row.seq, row.ts, row.version_id, row.parsed_view(),
                   row.state_json)

    def frame(self, machine: str, instance: str) -> str:
        """The `instance-update` message, encoded once (a state has one instance)."""
        if self._frame is None:
            self._frame = json.dumps({
                "type": "instance-update", "machineName": machine,
                "machineInstanceName": instance, "ts": self.ts, **self.view,
            }, separators=(",", ":"))  # fmt: skip
        return self._frame
