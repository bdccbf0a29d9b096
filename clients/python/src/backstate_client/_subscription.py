"""What `subscribe` returns: a handle to close, and, when no callbacks were given, a queue of
the states (and errors) to iterate over."""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from backstate_client._errors import ApiError
from backstate_client._realtime import OnError, OnState, Subscriber, new_request_id
from backstate_client._types import State

log = logging.getLogger("backstate_client.realtime")

_CLOSED = object()


def _subscriber(
    machine_name: str,
    instance_name: str,
    on_state: OnState | None,
    on_error: OnError | None,
    put: Callable[[Any], None],
) -> Subscriber:
    def unheard(error: ApiError) -> None:
        log.warning("subscription to %s/%s: %r", machine_name, instance_name, error)

    errors = on_error or (put if on_state is None else unheard)
    return Subscriber(new_request_id(), machine_name, instance_name, on_state or put, errors)


def _unpack(item: object) -> State:
    if isinstance(item, ApiError):
        raise item
    assert isinstance(item, dict)
    return item  # type: ignore[return-value]


class Subscription:
    """A subscription of the blocking `Client` (callbacks run on its socket's thread)."""

    def __init__(
        self,
        close: Callable[[Subscription], None],
        machine_name: str,
        instance_name: str,
        on_state: OnState | None,
        on_error: OnError | None,
    ) -> None:
        self._close = close
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.subscriber = _subscriber(
            machine_name, instance_name, on_state, on_error, self._queue.put
        )
        self.closed = False

    @property
    def request_id(self) -> str:
        return self.subscriber.request_id

    def close(self) -> None:
        """Unsubscribe (and close the socket if it was the client's last subscription)."""
        if not self.closed:
            self.closed = True
            self._close(self)
            self._queue.put(_CLOSED)

    unsubscribe = close

    def get(self, timeout: float | None = None) -> State:
        """The next state, for a subscription made without callbacks (the callbacks get what
        it would get); raises the next error, or `TimeoutError` if none came within
        `timeout` seconds."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no state within {timeout} s") from None
        if item is _CLOSED:
            self._queue.put(_CLOSED)
            raise RuntimeError("the subscription is closed")
        return _unpack(item)

    def __iter__(self) -> Iterator[State]:
        while True:
            item = self._queue.get()
            if item is _CLOSED:
                self._queue.put(_CLOSED)
                return
            yield _unpack(item)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class AsyncSubscription:
    """A subscription of the `AsyncClient` (callbacks run in its socket's task)."""

    def __init__(
        self,
        close: Callable[[AsyncSubscription], Awaitable[None]],
        machine_name: str,
        instance_name: str,
        on_state: OnState | None,
        on_error: OnError | None,
    ) -> None:
        self._close = close
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.subscriber = _subscriber(
            machine_name, instance_name, on_state, on_error, self._queue.put_nowait
        )
        self.closed = False

    @property
    def request_id(self) -> str:
        return self.subscriber.request_id

    async def close(self) -> None:
        """Unsubscribe (and close the socket if it was the client's last subscription)."""
        if not self.closed:
            self.closed = True
            await self._close(self)
            self._queue.put_nowait(_CLOSED)

    unsubscribe = close

    async def get(self, timeout: float | None = None) -> State:
        """The next state, for a subscription made without callbacks; raises the next error,
        or `TimeoutError` if none came within `timeout` seconds."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no state within {timeout} s") from None
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            raise RuntimeError("the subscription is closed")
        return _unpack(item)

    async def __aiter__(self) -> AsyncIterator[State]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                self._queue.put_nowait(_CLOSED)
                return
            yield _unpack(item)

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
