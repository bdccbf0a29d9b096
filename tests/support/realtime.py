"""A realtime client speaking `/rt` as `@statebacked/client` does (JSON text frames), for tests:
synchronous, with a deadline on every wait."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from websockets.sync.client import ClientConnection, connect

WAIT_S = 20.0


def rt_url(base_url: str, token: str | None, **params: str) -> str:
    query = dict(params)
    if token is not None:
        query["token"] = token
    return base_url.replace("http://", "ws://", 1) + "/rt?" + urlencode(query)


class Realtime:
    def __init__(self, base_url: str, token: str | None, **params: str):
        self.socket: ClientConnection = connect(rt_url(base_url, token, **params),
                                                compression=None, legacy=True)

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Realtime:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, message: dict[str, Any]) -> None:
        self.socket.send(json.dumps(message))

    def subscribe(self, machine: str, instance: str, request_id: str = "r1") -> None:
        self.send({"type": "subscribe-to-instance", "machineName": machine,
                   "machineInstanceName": instance, "requestId": request_id})

    def unsubscribe(self, machine: str, instance: str, request_id: str = "r1") -> None:
        self.send({"type": "unsubscribe-from-instance", "machineName": machine,
                   "machineInstanceName": instance, "requestId": request_id})

    def ping(self) -> None:
        self.send({"type": "ping"})

    def next(self, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next frame, decoded (TimeoutError after `timeout`)."""
        frame = self.socket.recv(timeout=timeout)
        assert isinstance(frame, str), f"a binary frame: {frame!r}"
        message: dict[str, Any] = json.loads(frame)
        return message

    def update(self, timeout: float = WAIT_S) -> dict[str, Any]:
        message = self.next(timeout)
        assert message["type"] == "instance-update", message
        return message

    def error(self, timeout: float = WAIT_S) -> dict[str, Any]:
        message = self.next(timeout)
        assert message["type"] == "error", message
        return message


def state_of(update: dict[str, Any]) -> dict[str, Any]:
    """An `instance-update` as the State HTTP answers with (the same fields)."""
    return {k: v for k, v in update.items()
            if k not in ("type", "machineName", "machineInstanceName")}
