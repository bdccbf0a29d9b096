"""Checked by mypy (`make lint`), never run: what type checkers see of both clients. One
definition of each call serves `Client` and `AsyncClient` (see `_namespace.py`); these lines
fail the type check if either stops seeing its own return types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, assert_type

from backstate_client import (
    AdminInstanceState,
    AsyncClient,
    AsyncSubscription,
    Client,
    LogEntry,
    MachinePage,
    State,
    Subscription,
)


def blocking(client: Client) -> None:
    assert_type(client.machines.list(), MachinePage)
    assert_type(client.machines.create("m"), None)
    assert_type(client.machine_instances.send_event("m", "i", "go"), State)
    assert_type(client.machine_instances.get_or_create("m", "i", context=dict), State)
    assert_type(client.machine_instances.admin.get("m", "i"), AdminInstanceState)
    assert_type(client.machine_instances.subscribe("m", "i"), Subscription)
    assert_type(client.logs.watch(datetime.now(UTC)), Iterator[LogEntry])
    assert_type(client.tokens.exchange("org", "svc", "t"), str)
    client.machines.dangerously.delete("m", danger_data_will_be_deleted_forever=True)


async def asynchronous(client: AsyncClient) -> None:
    pending: Coroutine[Any, Any, MachinePage] = client.machines.list()  # not awaited yet
    assert_type(await pending, MachinePage)
    assert_type(await client.machine_instances.send_event("m", "i", "go"), State)
    assert_type(await client.machine_instances.subscribe("m", "i"), AsyncSubscription)
    assert_type(client.logs.watch(datetime.now(UTC)), AsyncIterator[LogEntry])
    async with await client.machine_instances.subscribe("m", "i") as subscription:
        async for state in subscription:
            assert_type(state, State)
