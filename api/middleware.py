"""Pure ASGI middleware: path clean-up, request body limits, the last-resort 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PAYLOAD_TOO_LARGE, error_response

_SLASHES = re.compile(r"/{2,}")
log = logging.getLogger("backstate.api")


class CatchAll:
    """Answer an unexpected exception with a plain JSON 500 (details go to the log only).

    Starlette's own 500 handler re-raises after answering, and uvicorn then drops the
    connection; this ends the request cleanly instead."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(500, "internal server error", "internal-error")
            await response(scope, receive, send)


class CollapseSlashes:
    """Serve `//machines` as `/machines`: clients append paths to `apiHost` verbatim, and an
    `apiHost` with a trailing slash is an easy mistake."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope["path"]:
            scope = dict(scope, path=_SLASHES.sub("/", scope["path"]))
        await self.app(scope, receive, send)


class BodyLimit:
    """Read the whole request body up front (the API's bodies are small) and answer 413 when
    it is larger than `limit_for(path)`, before any route sees it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _too_large(limit, scope, receive, send)
            return
        message: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay(message, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(first: Message, receive: Receive) -> Receive:
    """A `receive` that gives `first` (a message already read) again, then reads on."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replaying


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    message = f"request body is larger than the limit of {limit} bytes"
    await error_response(413, message, PAYLOAD_TOO_LARGE, "body")(scope, receive, send)
