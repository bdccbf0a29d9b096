"""Log entries: the lines a machine (or the runtime, about a machine) printed, with where they
came from."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.results import LogLine

# An entry's text at most: the sandbox already caps a line at 64 KiB and a step at 1 MiB.
ENTRY_BYTES = 64 * 1024
RUNTIME_PREFIX = "[backstate] "


@dataclass(frozen=True)
class LogOrigin:
    """Whose output it is. `version_id` may be unknown for a runtime line (the writer then
    takes the instance's current version)."""

    org_id: uuid.UUID
    machine: str
    instance: str
    version_id: uuid.UUID | None


@dataclass(frozen=True)
class LogEntry:
    origin: LogOrigin
    ts_ms: int
    stream: str     # "stdout" or "stderr"
    text: str

    @property
    def lines(self) -> int:
        return self.text.count("\n") + 1


def entries(origin: LogOrigin, lines: Iterable[LogLine]) -> list[LogEntry]:
    """`lines` as entries: consecutive lines on one stream at one millisecond share an entry
    (as State Backed's do), which keeps a burst from one step to a few entries."""
    out: list[LogEntry] = []
    run: list[str] = []
    size = 0
    key: tuple[int, str] | None = None
    for line in lines:
        line_key = (line.ts_ms, line.stream)
        if key is not None and (line_key != key or size + len(line.text) + 1 > ENTRY_BYTES):
            out.append(LogEntry(origin, key[0], key[1], "\n".join(run)))
            run, size = [], 0
        key = line_key
        run.append(line.text)
        size += len(line.text) + 1
    if key is not None:
        out.append(LogEntry(origin, key[0], key[1], "\n".join(run)))
    return out
