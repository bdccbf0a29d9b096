"""The `/rt` WebSocket protocol (contract §4), without the socket.

Client to server, JSON text frames:
    {"type":"subscribe-to-instance","machineName","machineInstanceName","requestId"}
    {"type":"unsubscribe-from-instance", same fields}
    {"type":"ping"}                       (every `ws_ping_interval_s`, 5 minutes by default)
Server to client:
    {"type":"instance-update","machineName","machineInstanceName","ts","state",
     "publicContext"?,"tags","done"}      (matched by machine and instance, not by requestId)
    {"type":"error","requestId","status","code"}   (matched by requestId)

`Subscriptions` keeps the active subscriptions of one client, makes their frames and hands
received frames to the right subscribers. A request id is made once per subscription and sent
again when the subscription is re-sent on a new connection. The socket loops that use it are
`_realtime_sync.py` (a thread) and `_realtime_async.py` (a task).

Unlike the official client, which reconnects at once forever and keeps the token it first
connected with, the loops wait a little longer after each failed attempt (`reconnect_delay`;
a connection that brought frames resets it),
take a fresh token for each connection, and report a refused connection (an HTTP status instead
of the upgrade) to the subscribers once per outage.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backstate_client._errors import ApiError, error_for
from backstate_client._flow import Response, failure
from backstate_client._state import enhance_state
from backstate_client._types import State

log = logging.getLogger("backstate_client.realtime")

OnState = Callable[[State], None]
OnError = Callable[[ApiError], None]

PING = json.dumps({"type": "ping"})
SUBSCRIPTION_ERROR = "instance subscription error"
# The largest frame accepted: a state's public context may be up to 400 KB of JSON.
MAX_FRAME_BYTES = 16 * 1024 * 1024


def reconnect_delay(failures: int) -> float:
    """Seconds to wait before connecting again, after `failures` connections in a row that
    failed or brought nothing: 0.1 s after the first, doubling up to 5 s."""
    return min(5.0, 0.1 * 2.0 ** max(0, failures - 1))


def refused(status: int, body: bytes) -> ApiError:
    """The error for an upgrade answered with an HTTP status instead."""
    said = failure(Response(status, body))
    message = f"realtime connection refused: {said.message}"
    return error_for(status, said.code, message, said.parameter)


@dataclass(frozen=True)
class Subscriber:
    request_id: str
    machine_name: str
    instance_name: str
    on_state: OnState
    on_error: OnError

    def frame(self, kind: str) -> str:
        return json.dumps({
            "type": kind,
            "machineName": self.machine_name,
            "machineInstanceName": self.instance_name,
            "requestId": self.request_id,
        })  # fmt: skip


def new_request_id() -> str:
    return secrets.token_hex(8)


class Subscriptions:
    """The subscriptions of one client's socket. Thread-safe; callbacks run outside its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Subscriber] = {}

    def add(self, subscriber: Subscriber) -> str:
        """Register; the frame that subscribes."""
        with self._lock:
            self._active[subscriber.request_id] = subscriber
        return subscriber.frame("subscribe-to-instance")

    def remove(self, request_id: str) -> str | None:
        """Forget; the frame that unsubscribes (None if it was not active)."""
        with self._lock:
            subscriber = self._active.pop(request_id, None)
        return None if subscriber is None else subscriber.frame("unsubscribe-from-instance")

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._active)

    def subscribe_frames(self) -> list[str]:
        """What a new connection sends first: every active subscription."""
        with self._lock:
            return [s.frame("subscribe-to-instance") for s in self._active.values()]

    def receive(self, text: str | bytes) -> None:
        """Hand one frame from the server to the subscribers it is for. Frames that are not
        JSON objects and unknown types are ignored, as the official client ignores them."""
        try:
            message = json.loads(text)
        except ValueError:
            log.debug("ignored a frame that is not JSON: %r", text[:200])
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "instance-update":
            self._update(message)
        elif message.get("type") == "error":
            self._error(message)

    def fail_all(self, error: ApiError) -> None:
        for subscriber in self._snapshot():
            _deliver(subscriber.on_error, error)

    def _update(self, message: dict[str, Any]) -> None:
        fields = ("state", "publicContext", "done", "tags", "ts")
        state = enhance_state({name: message[name] for name in fields if name in message})
        machine, instance = message.get("machineName"), message.get("machineInstanceName")
        for subscriber in self._snapshot():
            if subscriber.machine_name == machine and subscriber.instance_name == instance:
                _deliver(subscriber.on_state, state)

    def _error(self, message: dict[str, Any]) -> None:
        with self._lock:
            subscriber = self._active.get(str(message.get("requestId")))
        if subscriber is None:
            return
        status = message.get("status")
        code = message.get("code")
        error = error_for(
            status if isinstance(status, int) else 0,
            code if isinstance(code, str) else None,
            SUBSCRIPTION_ERROR,
        )
        _deliver(subscriber.on_error, error)

    def _snapshot(self) -> list[Subscriber]:
        with self._lock:
            return list(self._active.values())


def _deliver(callback: Callable[[Any], None], value: Any) -> None:
    """Call a user's callback; its failure is logged, and does not stop the socket's loop."""
    try:
        callback(value)
    except Exception:
        log.exception("a subscription callback raised")
