"""`GET /logs`: a page of the org's machine logs, with the cursor contract of State Backed's
`logs.retrieve` and `logs.watch`.

The client passes `from` as JavaScript's `toISOString()` and, for the next call, uses the
`maxTimestamp` it gets back; when it gets no entries and `maxTimestamp` equals its `from`
(string equality), `watch` waits 30 s before asking again, otherwise it asks again at once.
So: `from` is inclusive and `maxTimestamp` is the last entry's time + 1 ms, in exactly
`toISOString()`'s format; with nothing new it is `from` again, formatted the same way. A page
never ends inside a millisecond (the next page starts at the next one), so nothing is returned
twice or passed over, unless a single millisecond holds more than a page of one org's entries
(then its first 100 are returned; consecutive lines of one step share an entry, so it takes
over a hundred steps printing in the same millisecond). Entries younger than `settle_s` are not
shown yet: they may still be on their way to the table (`LogWriter`), and a `watch` that had
passed their time would never see them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from api import ids
from api.auth import Principal
from api.schemas import SLUG_PATTERN
from runtime.clock import Clock
from runtime.errors import InvalidRequestError
from runtime.logs import LogWriter
from runtime.store import Database
from runtime.store import logs as log_rows
from runtime.store.models import MachineLog

PAGE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SLUG = re.compile(SLUG_PATTERN.strip("^$"))


@dataclass(frozen=True)
class LogQuery:
    from_: str
    to: str | None = None
    machine: str | None = None
    instance: str | None = None
    version: str | None = None


class LogService:
    def __init__(self, db: Database, clock: Clock, writer: LogWriter, *, settle_s: float):
        self._db = db
        self._clock = clock
        self.writer = writer
        self._settle_ms = int(settle_s * 1000)

    def start(self) -> None:
        self.writer.start()

    def close(self) -> None:
        self.writer.close()

    def page(self, principal: Principal, query: LogQuery) -> dict[str, Any]:
        """Up to 100 entries from `from` on, and the `maxTimestamp` to ask from next."""
        from_ms = parse_time(query.from_, "from")
        to_ms = parse_time(query.to, "to") if query.to is not None else None
        version_id = _version(query.version)
        for name, value in (("machine", query.machine), ("instance", query.instance)):
            if value is not None and not _SLUG.fullmatch(value):
                raise InvalidRequestError(f"{name} must match {SLUG_PATTERN}", parameter=name)
        settled = self._clock.now_ms() - self._settle_ms
        until = settled if to_ms is None else min(to_ms, settled)
        with self._db.read() as session:
            rows = log_rows.page(session, principal.org_id, from_ms=from_ms, until_ms=until,
                                 machine=query.machine, instance=query.instance,
                                 version_id=version_id, limit=PAGE + 1)
        rows = _whole_milliseconds(rows)
        if rows:
            next_ms = rows[-1].ts_ms + 1
        elif to_ms is not None and from_ms < to_ms <= settled:
            next_ms = to_ms  # the range is over and settled: a `watch` with `to` ends here
        else:
            next_ms = from_ms
        return {"maxTimestamp": iso_ms(next_ms), "logs": [_entry(row) for row in rows]}


def parse_time(text: str, parameter: str) -> int:
    """An ISO 8601 time (as `toISOString()` writes it; a time without offset is UTC) in epoch
    milliseconds, truncated as JavaScript's `Date` would."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequestError(
            f"{parameter} must be an ISO 8601 time such as 2024-01-01T00:00:00.000Z, not "
            f"{text!r}", parameter=parameter) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds exactly as JavaScript's `Date.prototype.toISOString()` writes them."""
    when = _EPOCH + timedelta(milliseconds=ms)
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:"
            f"{when.minute:02d}:{when.second:02d}.{ms % 1000:03d}Z")


def _whole_milliseconds(rows: list[MachineLog]) -> list[MachineLog]:
    """At most a page, never ending inside a millisecond (a `PAGE + 1`-th row says whether the
    last one's millisecond goes on)."""
    if len(rows) <= PAGE:
        return rows
    last_ms = rows[PAGE - 1].ts_ms
    if rows[PAGE].ts_ms != last_ms:
        return rows[:PAGE]
    whole = [row for row in rows[:PAGE] if row.ts_ms != last_ms]
    return whole or rows[:PAGE]


def _entry(row: MachineLog) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "timestamp": iso_ms(row.ts_ms),
        "orgId": ids.encode("org", row.org_id),
        "machineName": row.machine,
        "instanceName": row.instance,
    }
    if row.version_id is not None:
        entry["machineVersionId"] = ids.encode("ver", row.version_id)
    entry.update(outputType=row.stream, log=row.text)
    return entry


def _version(pretty: str | None) -> uuid.UUID | None:
    if pretty is None:
        return None
    version_id = ids.decode("ver", pretty)
    if version_id is None:
        raise InvalidRequestError("version must be a machine version id (ver_...)",
                                  parameter="version")
    return version_id
