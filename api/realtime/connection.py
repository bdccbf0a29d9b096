"""One `/rt` connection: its subscriptions, what it still has to send, and when it ends.

The upgrade is always accepted (the official client reconnects at once, in a tight loop, when
it is refused); a bad token is reported on each subscription instead, with the status and code
HTTP would answer. Two tasks serve a connection: one reads and handles the client's messages
(one at a time, in order), the other sends (`Outbox`): each state is checked with `allowRead`
for this connection's caller before it goes out, and a state `allowRead` refuses is replaced by
an error frame. Only the sending task ever waits on the socket, so a client that stops reading
neither holds the reading up nor anything else: its outbox coalesces.

A connection that sends nothing for `idle_s` is closed; several subscriptions to one instance
(several `requestId`s) share one subscription, whose updates are sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.utils import ClientDisconnected

from api.auth import Principal
from api.realtime import protocol
from api.realtime.outbox import Outbox
from runtime import metrics
from runtime.errors import BackstateError, InvalidRequestError
from runtime.realtime import Change, Hub, Readers, Topic
from runtime.realtime.readers import context_key

log = logging.getLogger("backstate.realtime")
CLOSE_TIMEOUT_S = 5.0
# How a send fails when the client is gone (the receiving side then ends the connection).
_GONE = (WebSocketDisconnect, ClientDisconnected, RuntimeError)


@dataclass(frozen=True)
class Limits:
    idle_s: float = 600.0
    max_subscriptions: int = 100
    max_frame_bytes: int = 64 * 1024
    queue: int = 64


@dataclass(eq=False)
class Subscription:
    """One instance watched by one connection (a `Watcher` of the hub)."""

    outbox: Outbox
    origin: tuple[uuid.UUID, str, str]   # org, machine, instance: what allowRead is told
    request_ids: list[str]
    topic: Topic | None = None
    closed: bool = False
    pending: deque[Change] = field(default_factory=deque)
    coalesced: int = 0
    warned_at: float = float("-inf")

    @property
    def machine(self) -> str:
        return self.origin[1]

    @property
    def instance(self) -> str:
        return self.origin[2]

    def offer(self, change: Change) -> None:
        if not self.closed:
            self.outbox.put(self, change)


class Connection:
    def __init__(self, socket: WebSocket, caller: Principal | BackstateError, hub: Hub,
                 readers: Readers, limits: Limits):
        self._socket = socket
        self._caller = caller
        self._hub = hub
        self._readers = readers
        self._limits = limits
        self._outbox = Outbox(limits.queue)
        self._subscriptions: dict[tuple[str, str], Subscription] = {}
        self._context: dict[str, Any] = (
            caller.auth_context if isinstance(caller, Principal) else {})
        self._context_key = context_key(self._context)

    async def serve(self) -> None:
        """Serve the connection until the client leaves or goes idle."""
        metrics.WEBSOCKETS_OPENED.inc()
        metrics.WEBSOCKETS.inc()
        receiver = asyncio.ensure_future(self._receive_loop())
        sender = asyncio.ensure_future(self._send_loop())
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            failed = sender.exception() if sender.done() and not sender.cancelled() else None
            if failed is not None and not isinstance(failed, _GONE):
                log.error("realtime: sending failed; closing the connection", exc_info=failed)
                await self._close(1011, "internal error")
        finally:
            for task in (receiver, sender):
                task.cancel()
            await asyncio.gather(receiver, sender, return_exceptions=True)
            for sub in list(self._subscriptions.values()):
                self._end(sub)
            metrics.WEBSOCKETS.dec()

    # --- receiving -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await asyncio.wait_for(self._socket.receive(), self._limits.idle_s)
            except TimeoutError:
                await self._close(1001, "idle")
                return
            if message["type"] == "websocket.disconnect":
                return
            metrics.WEBSOCKET_FRAMES_RECEIVED.inc()
            await self._handle(message.get("text"), message.get("bytes"))

    async def _handle(self, text: str | None, data: bytes | None) -> None:
        try:
            message = protocol.parse(text, data, self._limits.max_frame_bytes)
        except protocol.BadMessage as bad:
            self._outbox.error(protocol.error_frame(bad.request_id, bad.error))
            return
        if isinstance(message, protocol.Subscribe):
            await self._subscribe(message)
        elif isinstance(message, protocol.Unsubscribe):
            self._unsubscribe(message)
        # a ping only keeps the connection from going idle

    async def _subscribe(self, message: protocol.Subscribe) -> None:
        try:
            principal = self._authorized()
            sub = self._subscriptions.get((message.machine, message.instance))
            if sub is not None:
                self._join(sub, message.request_id)
                return
            if len(self._subscriptions) >= self._limits.max_subscriptions:
                raise InvalidRequestError(
                    f"a connection may subscribe to at most {self._limits.max_subscriptions} "
                    "instances; unsubscribe from one first, or open another connection",
                    code="too-many-subscriptions")
            origin = (principal.org_id, message.machine, message.instance)
            sub = Subscription(self._outbox, origin, [message.request_id])
            self._subscriptions[(message.machine, message.instance)] = sub
            try:
                sub.topic = await self._hub.watch(principal.org_id, message.machine,
                                                  message.instance, sub)
            except BaseException:
                self._end(sub)
                raise
        except BackstateError as exc:
            self._outbox.error(protocol.error_frame(message.request_id, exc))
        except Exception:  # e.g. the database is unreachable: the server's fault, said so
            log.exception("realtime: subscribing to %s/%s failed", message.machine,
                          message.instance)
            failed = BackstateError("subscribing failed on the server; try again")
            self._outbox.error(protocol.error_frame(message.request_id, failed))

    def _authorized(self) -> Principal:
        if isinstance(self._caller, BackstateError):
            raise self._caller
        self._caller.require("state.read")
        return self._caller

    def _join(self, sub: Subscription, request_id: str) -> None:
        """Another subscription to an instance already watched: it shares the updates, and
        gets the current state at once, as every new subscription does."""
        if request_id not in sub.request_ids:
            sub.request_ids.append(request_id)
        if sub.topic is not None and sub.topic.latest is not None:
            sub.offer(sub.topic.latest)

    def _unsubscribe(self, message: protocol.Unsubscribe) -> None:
        for sub in self._subscriptions.values():
            names_match = message.machine in (None, sub.machine) and message.instance in (
                None, sub.instance)
            if names_match and message.request_id in sub.request_ids:
                sub.request_ids.remove(message.request_id)
                if not sub.request_ids:
                    self._end(sub)
                return
        # unknown subscriptions are tolerated: the client queues unsubscribes while offline

    def _end(self, sub: Subscription) -> None:
        sub.closed = True
        sub.pending.clear()
        if self._subscriptions.get((sub.machine, sub.instance)) is sub:
            del self._subscriptions[(sub.machine, sub.instance)]
        if sub.topic is not None:
            self._hub.unwatch(sub.topic, sub)

    # --- sending -------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            sub, item = await self._outbox.get()
            if isinstance(item, str):
                await self._send(item)
                continue
            assert isinstance(sub, Subscription)
            verdict = await self._readers.verdict(sub.origin, item, self._context,
                                                  self._context_key)
            if sub.closed:
                continue
            if verdict is None:
                await self._send(item.frame(sub.machine, sub.instance))
                continue
            for request_id in list(sub.request_ids):
                await self._send(protocol.error_frame(request_id, verdict))

    async def _send(self, frame: str) -> None:
        await self._socket.send_text(frame)
        metrics.WEBSOCKET_FRAMES_SENT.inc()

    async def _close(self, code: int, reason: str) -> None:
        # A client that stopped reading may never take the close frame: do not wait forever.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._socket.close(code, reason), CLOSE_TIMEOUT_S)
