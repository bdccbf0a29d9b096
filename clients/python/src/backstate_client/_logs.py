"""Machine logs: what machines wrote to `console` (and the runtime's own lines), by time.

`watch` follows the contract of the official client's `logs.watch` exactly: each batch's
`maxTimestamp` is the next `from`; a batch without logs whose `maxTimestamp` is the very
`from` string it was asked for means "nothing new yet", and only then does it wait (30 s by
default) before asking again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from backstate_client._flow import Emit, Flow, Request, Sleep, Stream, call
from backstate_client._namespace import Mode, Namespace, operation, stream
from backstate_client._types import LogBatch, LogEntry

IDLE_WAIT_S = 30.0


def iso(moment: datetime) -> str:
    """`moment` as JavaScript's `Date.toISOString()` writes it: UTC, milliseconds, `Z`."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime (e.g. in UTC)")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Logs(Namespace[Mode]):
    """Logs of the org's machines (needs the `logs.read` scope)."""

    @operation
    def retrieve(
        self,
        from_: datetime,
        *,
        to: datetime | None = None,
        machine_name: str | None = None,
        instance_name: str | None = None,
        machine_version_id: str | None = None,
    ) -> Flow[LogBatch]:
        """Up to 100 log entries from `from_` on (possibly fewer, or none, even if more
        exist), and the `maxTimestamp` to pass as the next `from_`. A `maxTimestamp` equal to
        `iso(from_)` means there is nothing newer yet."""
        request = _retrieve(from_, to, machine_name, instance_name, machine_version_id)
        batch: LogBatch = yield from call(request)
        return batch

    @stream(LogEntry)
    def watch(
        self,
        from_: datetime,
        *,
        to: datetime | None = None,
        machine_name: str | None = None,
        instance_name: str | None = None,
        machine_version_id: str | None = None,
        idle_wait_s: float = IDLE_WAIT_S,
    ) -> Stream:
        """Every log entry from `from_` on, as it becomes available: ends at `to`, or never
        without one. Polls as the official client does, waiting `idle_wait_s` whenever the
        server says nothing is new."""
        since = from_
        while to is None or since < to:
            asked = iso(since)
            request = _retrieve(since, to, machine_name, instance_name, machine_version_id)
            batch: LogBatch = yield from call(request)
            since = parse_iso(batch["maxTimestamp"])
            for entry in batch["logs"]:
                yield Emit(entry)
            if not batch["logs"] and batch["maxTimestamp"] == asked:
                yield Sleep(idle_wait_s)


def _retrieve(
    since: datetime,
    to: datetime | None,
    machine_name: str | None,
    instance_name: str | None,
    machine_version_id: str | None,
) -> Request:
    query = {"from": iso(since)}
    if machine_name:
        query["machine"] = machine_name
    if instance_name:
        query["instance"] = instance_name
    if machine_version_id:
        query["version"] = machine_version_id
    if to is not None:
        query["to"] = iso(to)
    return Request("GET", "/logs", query=query)
