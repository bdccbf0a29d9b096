"""The async client's `/rt` socket: one task per client while it has subscriptions, which
connects, (re)subscribes, pings, reads and calls the subscribers, and reconnects when the
connection ends. Protocol and policy are `_realtime.py`'s."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from backstate_client._errors import ApiError
from backstate_client._options import Options
from backstate_client._realtime import (
    MAX_FRAME_BYTES,
    PING,
    OnError,
    OnState,
    Subscriptions,
    log,
    reconnect_delay,
    refused,
)
from backstate_client._subscription import AsyncSubscription


class AsyncRealtime:
    def __init__(
        self,
        options: Options,
        token: Callable[[], Awaitable[str]],
        connect: Callable[..., Any] = connect,
    ) -> None:
        self._options = options
        self._token = token
        self._connect = connect
        self._subscriptions = Subscriptions()
        self._task: asyncio.Task[None] | None = None
        # Set together with reading the subscriptions to send (no await in between), so that
        # a subscription made while a connection opens is sent exactly once.
        self._connection: ClientConnection | None = None

    async def subscribe(
        self,
        machine_name: str,
        instance_name: str,
        on_state: OnState | None,
        on_error: OnError | None,
    ) -> AsyncSubscription:
        await self._token()  # a token that cannot be had fails this call, not the task
        subscription = AsyncSubscription(
            self._unsubscribe, machine_name, instance_name, on_state, on_error
        )
        frame = self._subscriptions.add(subscription.subscriber)
        connection = self._connection
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="backstate-client-rt")
        elif connection is not None:
            await _send(connection, frame)
        return subscription

    async def close(self) -> None:
        """Stop the task and close the socket."""
        task, self._task = self._task, None
        if task is not None:
            await _stop(task)

    async def _unsubscribe(self, subscription: AsyncSubscription) -> None:
        frame = self._subscriptions.remove(subscription.request_id)
        connection = self._connection
        if frame is not None and connection is not None:
            await _send(connection, frame)
        if not self._subscriptions:
            await self.close()

    async def _run(self) -> None:
        failures, reported = 0, False
        while True:
            error: ApiError | None = None
            try:
                url = self._options.realtime_url(await self._token())
                async with self._connect(url, max_size=MAX_FRAME_BYTES) as connection:
                    fruitful = await self._serve(connection)
                failures, reported = (0, False) if fruitful else (failures, reported)
            except InvalidStatus as exc:
                error = refused(exc.response.status_code, bytes(exc.response.body or b""))
            except ApiError as exc:  # no token
                error = exc
            except (OSError, InvalidHandshake, TimeoutError, httpx.HTTPError) as exc:
                log.info("realtime connection failed: %r", exc)
            except Exception:  # a bug must not end the subscriptions: log it, and go on
                log.exception("realtime connection failed")
            if error is not None and not reported:
                reported = True
                self._subscriptions.fail_all(error)
            failures += 1
            await asyncio.sleep(reconnect_delay(failures))

    async def _serve(self, connection: ClientConnection) -> bool:
        """Use an open connection until it ends; whether it brought any frame."""
        self._connection = connection
        frames = self._subscriptions.subscribe_frames()
        received = False
        try:
            for frame in frames:
                await connection.send(frame)
            interval = self._options.ws_ping_interval_s
            loop = asyncio.get_running_loop()
            next_ping = loop.time() + interval
            while True:
                try:
                    text = await asyncio.wait_for(connection.recv(), next_ping - loop.time())
                except TimeoutError:
                    await connection.send(PING)
                    next_ping = loop.time() + interval
                    continue
                received = True
                self._subscriptions.receive(text)
        except ConnectionClosed:
            return received
        finally:
            self._connection = None


async def _send(connection: ClientConnection, frame: str) -> None:
    """Send on a connection that may have just closed (the next one re-sends what matters)."""
    with contextlib.suppress(ConnectionClosed):
        await connection.send(frame)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    if task is asyncio.current_task():
        return  # closed from a callback of the task itself: it ends at its next await
    with contextlib.suppress(asyncio.CancelledError):
        await task
