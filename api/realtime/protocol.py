"""The `/rt` messages (State Backed's realtime protocol): what clients send, parsed and checked,
and the error frames the server answers with. Every message is one JSON object in a text
frame.

    client: {"type": "subscribe-to-instance", "machineName", "machineInstanceName", "requestId"}
            {"type": "unsubscribe-from-instance", "machineName", "machineInstanceName",
             "requestId"}
            {"type": "ping"}
    server: {"type": "instance-update", "machineName", "machineInstanceName", "ts", "state",
             "publicContext"?, "tags", "done"}
            {"type": "error", "requestId"?, "status", "code", "error", "parameter"?}

The client matches errors by `requestId` and turns `status` and `code` into its error classes
as it does for HTTP; `error` and `parameter` are for people reading the frames.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from api.errors import status_of
from api.schemas import SLUG_PATTERN
from runtime.errors import BackstateError, InvalidRequestError, PayloadTooLargeError

SUBSCRIBE = "subscribe-to-instance"
UNSUBSCRIBE = "unsubscribe-from-instance"
PING = "ping"
MAX_REQUEST_ID = 128
_SLUG = re.compile(SLUG_PATTERN.strip("^$"))


@dataclass(frozen=True)
class Subscribe:
    request_id: str
    machine: str
    instance: str


@dataclass(frozen=True)
class Unsubscribe:
    request_id: str | None
    machine: str | None
    instance: str | None


@dataclass(frozen=True)
class Ping:
    pass


Message = Subscribe | Unsubscribe | Ping


class BadMessage(Exception):
    """A message that cannot be served: `error` is the answer, sent with `request_id` when
    the message had a readable one."""

    def __init__(self, error: BackstateError, request_id: str | None = None):
        super().__init__(error.message)
        self.error = error
        self.request_id = request_id


def parse(text: str | None, data: bytes | None, max_bytes: int) -> Message:
    """One received frame as a message; BadMessage if it is not one we serve."""
    if text is None:
        size = len(data or b"")
        if size > max_bytes:
            raise BadMessage(_too_large(size, max_bytes))
        raise BadMessage(InvalidRequestError(
            "binary frame: messages are JSON objects in text frames", code="invalid-message"))
    if len(text) * 4 > max_bytes and len(text.encode()) > max_bytes:
        raise BadMessage(_too_large(len(text.encode()), max_bytes))
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise BadMessage(InvalidRequestError("a message must be a JSON object",
                                             code="invalid-message"))
    request_id = _request_id(message)
    kind = message.get("type")
    if kind == SUBSCRIBE:
        return _subscribe(message, request_id)
    if kind == UNSUBSCRIBE:
        return Unsubscribe(request_id, _text(message, "machineName"),
                           _text(message, "machineInstanceName"))
    if kind == PING:
        return Ping()
    raise BadMessage(InvalidRequestError(
        f"unknown message type {kind!r}: this server takes {SUBSCRIBE!r}, {UNSUBSCRIBE!r} "
        f"and {PING!r}", parameter="type", code="unknown-message-type"), request_id)


def error_frame(request_id: str | None, error: BackstateError) -> str:
    status = status_of(error)
    frame: dict[str, Any] = {"type": "error"}
    if request_id is not None:
        frame["requestId"] = request_id
    frame.update(status=status, code=error.code if status != 500 else "internal-error",
                 error=error.message if status != 500 else "internal server error")
    if error.parameter is not None and status != 500:
        frame["parameter"] = error.parameter
    return json.dumps(frame, separators=(",", ":"))


def _subscribe(message: dict[str, Any], request_id: str | None) -> Subscribe:
    if request_id is None:
        raise BadMessage(InvalidRequestError(
            f"requestId must be a string of 1 to {MAX_REQUEST_ID} characters",
            parameter="requestId"))
    names = []
    for field in ("machineName", "machineInstanceName"):
        value = message.get(field)
        if not isinstance(value, str) or not _SLUG.fullmatch(value):
            raise BadMessage(InvalidRequestError(
                f"{field} must match {SLUG_PATTERN}", parameter=field), request_id)
        names.append(value)
    return Subscribe(request_id, names[0], names[1])


def _request_id(message: dict[str, Any]) -> str | None:
    value = message.get("requestId")
    if isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID:
        return value
    return None


def _text(message: dict[str, Any], field: str) -> str | None:
    value = message.get(field)
    return value if isinstance(value, str) else None


def _too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the message is {size} bytes; the limit is {limit}",
                                parameter="message")
