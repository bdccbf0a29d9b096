"""An instance's outbox: the persistent children it creates and the events it sends to other
instances, as plain values the facade delivers.

A machine that spawns a persistent child (`spawnPersistentInstance`, an invoke of
`persistentInvocableSource`), `sendTo`s a persistent ref, or `sendParent`s as a persistent
child, does not reach the other instance from inside its step: the harness records an outbox
entry with the macrostep (`results.Timer.delivery`), and it is written in the macrostep's commit
as a row of the timer table — due at once, or after the send's delay, and cancellable by its
send id like any delayed event. The scheduler claims these rows with the timers, and the facade
delivers each through the receiver's own serialized path (its mailbox, its lease), consuming the
row in the receiver's first commit (`commits.StepCommits`): a crash before that commit leaves
the row for another delivery, a crash after it leaves nothing to deliver twice. A creation is
that child's first commit, so a child is never created twice.

No step ever holds one instance's lease while it waits for another's: sending only writes rows
in the sender's own commit, so instances that message each other in a cycle, or one that floods
another, cannot deadlock.

The receiver authorizes a message with its `allowWrite`, whose `authContext` is
`{"stateBackedSender": {"machineName", "machineInstanceName"}}`; a creation is authorized as an
`initialization` with the same. Only `done.invoke.<id>`, which the runtime itself sends to the
parent of an invoked child that reached its final state, is delivered as trusted.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from runtime.results import Delivery
from runtime.store.timers import Claimed

log = logging.getLogger("backstate.outbox")


def sender(timer: Claimed) -> dict[str, Any]:
    """The `authContext` the receiver's `allowWrite` sees."""
    return {"stateBackedSender": {"machineName": timer.machine,
                                  "machineInstanceName": timer.instance}}


@dataclass(frozen=True)
class Message:
    """An event for another instance of the sender's org."""

    machine: str
    instance: str
    delivery: Delivery


@dataclass(frozen=True)
class Child:
    """A persistent child to create, with its parent."""

    machine: str
    instance: str
    version_id: uuid.UUID | None
    context: dict[str, Any] | None
    auth_context: dict[str, Any]
    parent: dict[str, Any]


def parse(timer: Claimed) -> Message | Child:
    """The entry `timer` carries (`timer.delivery` is not None)."""
    entry = timer.delivery
    assert entry is not None, "a plain timer is the instance's own event"
    if entry["kind"] == "create":
        parent = {"id": str(timer.instance_id), "machine": timer.machine,
                  "instance": timer.instance, "invokeId": entry.get("invokeId")}
        return Child(entry["machine"], entry["instance"], version_id(entry.get("version")),
                     entry.get("context"), sender(timer), parent)
    trusted = bool(entry.get("trusted"))
    delivery = Delivery(timer.event, {} if trusted else sender(timer), trusted=trusted)
    return Message(entry["machine"], entry["instance"], delivery)


def version_id(pretty: str | None) -> uuid.UUID | None:
    """A `machineVersionId` as clients show it (`ver_` and the UUID's bytes in base64url, see
    api/ids.py); None for the machine's current version. ValueError if it is not one."""
    if pretty is None:
        return None
    head, _, body = pretty.partition("_")
    try:
        raw = base64.urlsafe_b64decode(body + "==")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{pretty!r} is not a machine version id") from exc
    if head != "ver" or len(body) != 22 or len(raw) != 16:
        raise ValueError(f"{pretty!r} is not a machine version id")
    return uuid.UUID(bytes=raw)


def describe(timer: Claimed, entry: Message | Child) -> str:
    what = "creating child" if isinstance(entry, Child) else "event for"
    return (f"{what} {entry.machine}/{entry.instance} from {timer.machine}/{timer.instance}")
