"""How one definition of each API method serves both clients.

A resource (`Machines`, `MachineInstances`...) is a `Namespace[Sync]` in `Client` and a
`Namespace[Async]` in `AsyncClient`. Its methods are written once, as flows, and decorated with
`operation` (one call) or `stream` (a call that yields values). Read through a `Namespace[Sync]`
such a method runs its flow and returns the result; read through a `Namespace[Async]` it returns
a coroutine (`stream`: an async iterator). The overloads of `__get__` tell type checkers which,
so `client.machines.get("m")` is a `MachineDetail` and `await aclient.machines.get("m")` too.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from backstate_client._flow import Flow, Stream

P = ParamSpec("P")
T = TypeVar("T")
Owner = TypeVar("Owner")


class Sync:
    """Marks a namespace of the blocking `Client`."""


class Async:
    """Marks a namespace of the `AsyncClient`."""


Mode = TypeVar("Mode", Sync, Async)


class Runner(Protocol):
    """What a client does with flows (see `Client` and `AsyncClient`)."""

    def run(self, flow: Flow[Any]) -> Any: ...

    def stream(self, flow: Stream) -> Any: ...

    def subscribe(
        self, machine_name: str, instance_name: str, on_state: Any, on_error: Any
    ) -> Any: ...


class Namespace(Generic[Mode]):
    def __init__(self, runner: Runner) -> None:
        self._runner = runner


class Operation(Generic[P, T]):
    def __init__(self, fn: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self._fn = fn

    @overload
    def __get__(self, namespace: None, owner: type[Any]) -> Operation[P, T]: ...
    @overload
    def __get__(self, namespace: Namespace[Sync], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, namespace: Namespace[Async], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, namespace: Namespace[Any] | None, owner: type[Any]) -> Any:
        if namespace is None:
            return self
        fn, runner = self._fn, namespace._runner

        @functools.wraps(fn)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return runner.run(fn(namespace, *args, **kwargs))

        return bound


class Streaming(Generic[P, T]):
    def __init__(self, fn: Callable[Concatenate[Any, P], Stream]) -> None:
        self._fn = fn

    @overload
    def __get__(self, namespace: None, owner: type[Any]) -> Streaming[P, T]: ...
    @overload
    def __get__(self, namespace: Namespace[Sync], owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(
        self, namespace: Namespace[Async], owner: type[Any]
    ) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, namespace: Namespace[Any] | None, owner: type[Any]) -> Any:
        if namespace is None:
            return self
        fn, runner = self._fn, namespace._runner

        @functools.wraps(fn)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return runner.stream(fn(namespace, *args, **kwargs))

        return bound


def operation(fn: Callable[Concatenate[Owner, P], Flow[T]]) -> Operation[P, T]:
    """A method written as a flow: its result in `Client`, a coroutine in `AsyncClient`."""
    return Operation(fn)


def stream(item: type[T]) -> Callable[[Callable[Concatenate[Owner, P], Stream]], Streaming[P, T]]:
    """A method written as a stream of `item`s: an iterator in `Client`, an async iterator in
    `AsyncClient`."""

    def decorate(fn: Callable[Concatenate[Owner, P], Stream]) -> Streaming[P, T]:
        return Streaming(fn)

    return decorate
