"""A connection's outbox: per subscription in order and bounded, subscriptions taking turns,
errors first; overflowing keeps the latest state, logged and counted."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from api.realtime.connection import Subscription
from api.realtime.outbox import Outbox
from runtime.realtime import Change

ORG = uuid.uuid4()


def change(seq: int) -> Change:
    return Change(uuid.uuid4(), seq, seq, uuid.uuid4(), {"state": "s"}, "{}")


async def drain(outbox: Outbox, count: int) -> list[tuple[str, int | str]]:
    out: list[tuple[str, int | str]] = []
    for _ in range(count):
        sub, item = await asyncio.wait_for(outbox.get(), 5)
        out.append(("error", item) if isinstance(item, str) else (sub.instance, item.seq))
    return out


def test_subscriptions_take_turns_and_errors_go_first() -> None:
    async def scenario() -> list[tuple[str, int | str]]:
        outbox = Outbox(per_subscription=10)
        a = Subscription(outbox, (ORG, "m", "a"), ["ra"])
        b = Subscription(outbox, (ORG, "m", "b"), ["rb"])
        for seq in (1, 2, 3):
            a.offer(change(seq))
        b.offer(change(1))
        outbox.error("oops")
        return await drain(outbox, 5)

    assert asyncio.run(scenario()) == [("error", "oops"), ("a", 1), ("b", 1), ("a", 2),
                                       ("a", 3)]


def test_a_subscriber_too_far_behind_gets_the_latest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backstate.realtime")

    async def scenario() -> tuple[list[tuple[str, int | str]], int]:
        outbox = Outbox(per_subscription=3)
        slow = Subscription(outbox, (ORG, "m", "slow"), ["r"])
        for seq in range(1, 11):
            slow.offer(change(seq))
        return await drain(outbox, 1), outbox.coalesced

    sent, coalesced = asyncio.run(scenario())
    # 1..3 wait; 4 is one too many: only 4 is kept; 5, 6 wait behind it; 7: only 7; ...; 10
    assert (sent, coalesced) == ([("slow", 10)], 9)
    warnings = [r.message for r in caplog.records if "reads slower" in r.message]
    assert len(warnings) == 1, "once a minute per subscription, not per state"


def test_a_closed_subscription_sends_nothing_more() -> None:
    async def scenario() -> list[tuple[str, int | str]]:
        outbox = Outbox(per_subscription=10)
        gone = Subscription(outbox, (ORG, "m", "gone"), ["g"])
        kept = Subscription(outbox, (ORG, "m", "kept"), ["k"])
        gone.offer(change(1))
        kept.offer(change(1))
        gone.closed = True
        gone.pending.clear()
        gone.offer(change(2))
        return await drain(outbox, 1)

    assert asyncio.run(scenario()) == [("kept", 1)]
