"""`AsyncClient`: the asyncio client, running the same flows over `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx

from backstate_client._client import Done
from backstate_client._flow import Emit, Flow, Request, Resolve, Response, Sleep, Step, Stream
from backstate_client._namespace import Async
from backstate_client._options import (
    DEFAULT_API_HOST,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WS_PING_INTERVAL_S,
    Options,
)
from backstate_client._realtime import OnError, OnState
from backstate_client._realtime_async import AsyncRealtime
from backstate_client._resources import Resources
from backstate_client._subscription import AsyncSubscription
from backstate_client._tokens import CachedToken, TokenConfig, obtain_token

T = TypeVar("T")


class _AsyncRunner:
    def __init__(self, options: Options, token: TokenConfig, http: httpx.AsyncClient) -> None:
        self.options = options
        self.http = http
        self._config = token
        self._cached = CachedToken()
        self._token_lock = asyncio.Lock()
        self.realtime = AsyncRealtime(options, self.token)

    async def token(self) -> str:
        """The token to send: the cached one, or a fresh one (one caller fetches it at a
        time; the others wait for it)."""
        async with self._token_lock:
            current = self._cached.current(time.time())
            if current is None:
                current = await self.run(obtain_token(self._config))
                self._cached.store(current)
            return current

    async def run(self, flow: Flow[T]) -> T:
        done: Done | None = None
        async for item in self._drive(flow):  # to its end: Done is the last item
            if not isinstance(item, Done):
                raise TypeError("a call emitted a value; only streams may")
            done = item
        assert done is not None
        result: T = done.value
        return result

    async def stream(self, flow: Stream) -> AsyncIterator[Any]:
        async for item in self._drive(flow):
            if isinstance(item, Done):
                return
            yield item

    async def subscribe(
        self,
        machine_name: str,
        instance_name: str,
        on_state: OnState | None,
        on_error: OnError | None,
    ) -> AsyncSubscription:
        return await self.realtime.subscribe(machine_name, instance_name, on_state, on_error)

    async def _drive(self, flow: Flow[Any]) -> AsyncGenerator[Any, None]:
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    step = flow.throw(error) if error is not None else flow.send(value)
                except StopIteration as stop:
                    yield Done(stop.value)
                    return
                value, error = None, None
                if isinstance(step, Emit):
                    yield step.value
                    continue
                try:
                    value = await self._perform(step)
                except Exception as exc:
                    error = exc
        finally:
            flow.close()

    async def _perform(self, step: Step) -> Any:
        if isinstance(step, Request):
            token = await self.token() if step.auth == "token" else None
            response = await self.http.send(self.options.http_request(step, token))
            return Response(response.status_code, response.content)
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Resolve):
            value = step.getter()
            return await value if inspect.isawaitable(value) else value
        raise TypeError(f"unknown step {step!r}")


class AsyncClient(Resources[Async]):
    """The asyncio client for the State Backed API: the same calls as `Client`, awaited
    (`logs.watch` is an async iterator). Close it with `await client.aclose()` or use it in an
    `async with` block. Token functions may be async."""

    def __init__(
        self,
        token: TokenConfig,
        *,
        api_host: str = DEFAULT_API_HOST,
        org_id: str | None = None,
        act_as: Mapping[str, Any] | None = None,
        ws_ping_interval_s: float = DEFAULT_WS_PING_INTERVAL_S,
        timeout: float = DEFAULT_TIMEOUT_S,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.options = Options.make(api_host, org_id, act_as, ws_ping_interval_s)
        self._owns_http = http_client is None
        # Redirects are followed, as fetch follows them for the official client.
        http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self._runner = _AsyncRunner(self.options, token, http)
        super().__init__(self._runner)

    async def token(self) -> str:
        """The token the client sends now (obtained or refreshed if needed)."""
        return await self._runner.token()

    async def aclose(self) -> None:
        """Close the realtime socket and, if the client made it, the HTTP client."""
        await self._runner.realtime.close()
        if self._owns_http:
            await self._runner.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
