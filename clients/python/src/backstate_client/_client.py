"""`Client`: the blocking client, running the flows over `httpx.Client`."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any, TypeVar

import httpx

from backstate_client._flow import Emit, Flow, Request, Resolve, Response, Sleep, Step, Stream
from backstate_client._namespace import Sync
from backstate_client._options import (
    DEFAULT_API_HOST,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WS_PING_INTERVAL_S,
    Options,
)
from backstate_client._realtime import OnError, OnState
from backstate_client._realtime_sync import SyncRealtime
from backstate_client._resources import Resources
from backstate_client._subscription import Subscription
from backstate_client._tokens import CachedToken, TokenConfig, obtain_token

T = TypeVar("T")


class Done:
    """The last item a driven flow yields: its result."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Runner:
    def __init__(self, options: Options, token: TokenConfig, http: httpx.Client) -> None:
        self.options = options
        self.http = http
        self._config = token
        self._cached = CachedToken()
        self._token_lock = threading.Lock()
        self.realtime = SyncRealtime(options, self.token)

    def token(self) -> str:
        """The token to send: the cached one, or a fresh one (one caller fetches it at a
        time; the others wait for it)."""
        with self._token_lock:
            current = self._cached.current(time.time())
            if current is None:
                current = self.run(obtain_token(self._config))
                self._cached.store(current)
            return current

    def run(self, flow: Flow[T]) -> T:
        done: Done | None = None
        for item in self._drive(flow):  # to its end: Done is the last item
            if not isinstance(item, Done):
                raise TypeError("a call emitted a value; only streams may")
            done = item
        assert done is not None
        result: T = done.value
        return result

    def stream(self, flow: Stream) -> Iterator[Any]:
        for item in self._drive(flow):
            if isinstance(item, Done):
                return
            yield item

    def subscribe(
        self,
        machine_name: str,
        instance_name: str,
        on_state: OnState | None,
        on_error: OnError | None,
    ) -> Subscription:
        return self.realtime.subscribe(machine_name, instance_name, on_state, on_error)

    def _drive(self, flow: Flow[Any]) -> Generator[Any, None, None]:
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
                    value = self._perform(step)
                except Exception as exc:
                    error = exc
        finally:
            flow.close()

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Request):
            token = self.token() if step.auth == "token" else None
            response = self.http.send(self.options.http_request(step, token))
            return Response(response.status_code, response.content)
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Resolve):
            value = step.getter()
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError("the token function is async: use AsyncClient")
            return value
        raise TypeError(f"unknown step {step!r}")


class Client(Resources[Sync]):
    """A blocking client for the State Backed API (statebacked.dev, or a backstate server).

    `token` is what the official client calls the token config: a token string (e.g. made by
    `sign_token`), a function returning one, `IdentityProviderToken(...)` or
    `AnonymousSession(...)`. `api_host` is the server's base URL; `org_id` is sent as
    `x-statebacked-org-id` and `act_as` (claims) as `x-statebacked-act`, with which an admin
    key acts as an end user. Pass `http_client` to use your own `httpx.Client` (proxies,
    transports); otherwise one is made with `timeout`. Close the client (or use it in a
    `with` block) to close its connections."""

    def __init__(
        self,
        token: TokenConfig,
        *,
        api_host: str = DEFAULT_API_HOST,
        org_id: str | None = None,
        act_as: Mapping[str, Any] | None = None,
        ws_ping_interval_s: float = DEFAULT_WS_PING_INTERVAL_S,
        timeout: float = DEFAULT_TIMEOUT_S,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.options = Options.make(api_host, org_id, act_as, ws_ping_interval_s)
        self._owns_http = http_client is None
        # Redirects are followed, as fetch follows them for the official client.
        http = http_client or httpx.Client(timeout=timeout, follow_redirects=True)
        self._runner = _Runner(self.options, token, http)
        super().__init__(self._runner)

    def token(self) -> str:
        """The token the client sends now (obtained or refreshed if needed)."""
        return self._runner.token()

    def close(self) -> None:
        """Close the realtime socket and, if the client made it, the HTTP client."""
        self._runner.realtime.close()
        if self._owns_http:
            self._runner.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
