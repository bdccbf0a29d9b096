"""The async client seen through blocking calls, so that one test body drives both clients.

Every coroutine the `AsyncClient` returns is run to completion on an event loop of its own
thread (the loop the client's realtime task and HTTP connections live on), async iterators are
iterated from it, and namespaces and subscriptions are wrapped the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

from backstate_client import AsyncSubscription
from backstate_client._namespace import Namespace

CALL_TIMEOUT_S = 120


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(CALL_TIMEOUT_S)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()


class Blocking:
    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value):
            return lambda *args, **kwargs: self._wrap(value(*args, **kwargs))
        return self._wrap(value)

    @property
    def target(self) -> Any:
        return self._target

    def run_on_loop(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self._loop.run(coroutine)

    def __enter__(self) -> Blocking:
        self._loop.run(self._target.__aenter__())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.run(self._target.__aexit__(*exc))

    def __iter__(self) -> Iterator[Any]:
        return self._iterate(self._target.__aiter__())

    def _wrap(self, value: Any) -> Any:
        if inspect.iscoroutine(value):
            return self._wrap(self._loop.run(value))
        if isinstance(value, AsyncIterator):
            return self._iterate(value)
        if isinstance(value, Namespace | AsyncSubscription):
            return Blocking(value, self._loop)
        return value

    def _iterate(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        async def next_item() -> tuple[bool, Any]:
            try:
                return True, await iterator.__anext__()
            except StopAsyncIteration:
                return False, None

        while True:
            more, item = self._loop.run(next_item())
            if not more:
                return
            yield item
