"""A small WebSocket server speaking `/rt`'s protocol as a test scripts it, to test the
client's side of the protocol (subscribing again after a reconnect, errors by request id,
pings, refusals) in ways a healthy server never shows. The real server's tests are in
test_realtime.py."""

from __future__ import annotations

import itertools
import json
import queue
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.client.blocking import LoopThread

WAIT_S = 30  # generous: each wait ends as soon as what it waits for happens


@dataclass
class Received:
    connection: int
    message: Any  # the parsed JSON frame


@dataclass
class Connected:
    connection: int
    query: dict[str, str] = field(default_factory=dict)


class FakeRealtime:
    def __init__(self) -> None:
        self._loop = LoopThread()
        self._ids = itertools.count(1)
        self._connections: dict[int, ServerConnection] = {}
        self.events: queue.SimpleQueue[Received | Connected | int] = queue.SimpleQueue()
        self.refusals: list[tuple[int, str]] = []  # answers to the next upgrades, in turn
        self._server: Server | None = None
        self.url = ""

    def start(self) -> str:
        async def start() -> Server:
            return await serve(self._handle, "127.0.0.1", 0, process_request=self._process)

        self._server = self._loop.run(start())
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            server = self._server

            async def stop() -> None:
                server.close()
                await server.wait_closed()

            self._loop.run(stop())
        self._loop.close()

    # --- scripting ---------------------------------------------------------------------

    def next_event(self) -> Received | Connected | int:
        """The next thing that happened: a `Connected`, a `Received` frame, or the id of a
        connection that closed."""
        return self.events.get(timeout=WAIT_S)

    def expect_connection(self) -> Connected:
        event = self.next_event()
        assert isinstance(event, Connected), event
        return event

    def expect_message(self) -> Received:
        event = self.next_event()
        assert isinstance(event, Received), event
        return event

    def expect_closed(self) -> int:
        event = self.next_event()
        assert isinstance(event, int), event
        return event

    def send(self, connection: int, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self._loop.run(self._connections[connection].send(text))

    def drop(self, connection: int) -> None:
        self._loop.run(self._connections[connection].close())

    # --- the server ----------------------------------------------------------------------

    async def _process(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refusals:
            status, body = self.refusals.pop(0)
            return connection.respond(HTTPStatus(status), body)
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        connection = next(self._ids)
        self._connections[connection] = websocket
        assert websocket.request is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(websocket.request.path).query).items()}
        self.events.put(Connected(connection, query))
        try:
            async for text in websocket:
                self.events.put(Received(connection, json.loads(text)))
        except ConnectionClosed:
            pass
        finally:
            self.events.put(connection)
            del self._connections[connection]


def state_update(machine: str, instance: str, ts: int, state: Any, **more: Any) -> dict[str, Any]:
    return {
        "type": "instance-update", "machineName": machine, "machineInstanceName": instance,
        "ts": ts, "state": state, "tags": [], "done": False, **more,
    }  # fmt: skip


