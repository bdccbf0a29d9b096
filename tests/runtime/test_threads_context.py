"""Work handed to a thread runs in its caller's context: a step's log lines name the request
and the instance that caused it (runtime/logcontext.py)."""

from __future__ import annotations

import asyncio

from runtime import logcontext
from runtime.instances.threads import Threads


def test_a_thread_sees_its_callers_log_context_and_only_its_own() -> None:
    threads = Threads(2, "test")

    async def caller(request: str) -> tuple[str | None, object]:
        logcontext.REQUEST_ID.set(request)
        logcontext.INSTANCE.set(("org", "m", request))
        await asyncio.sleep(0)   # the other caller sets its own meanwhile
        return await threads.run(lambda: (logcontext.REQUEST_ID.get(),
                                          logcontext.INSTANCE.get()))

    async def both() -> list[tuple[str | None, object]]:
        return list(await asyncio.gather(caller("r1"), caller("r2")))

    try:
        assert asyncio.run(both()) == [("r1", ("org", "m", "r1")), ("r2", ("org", "m", "r2"))]
    finally:
        threads.close()
    assert logcontext.REQUEST_ID.get() is None
