"""The hub: one per process, it hands every committed state of a watched instance to its
watchers, in order, whichever process committed it.

A *topic* is one watched instance. Its states arrive by two ways: this process's own commits
from the instance core's feed (at once, from the committing thread), and other processes'
commits from a source (`sqlite.py` tails the change log, `postgres.py` listens for
notifications). Both may bring the same state, and a state committed here may arrive before an
earlier one committed elsewhere; the topic puts them in `seq` order, drops what it has passed,
and holds what comes early until the gap is filled: the missing states are in the change log,
and a source brings them within its poll (a state the log has dropped by then is skipped, and
logged: only a source stalled longer than the log's retention can cause that).

Ordering at the start of a watch: the feed listener and the source are running before the
topic reads the instance's current state, so every later commit arrives after that reading;
what arrives before the reading is held, and what the reading already includes is dropped.

With no topic, the hub is not subscribed to the feed (a commit then pays the feed's one
attribute read) and its source stops after `linger_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from runtime.instances.feed import Feed, StateCommitted
from runtime.instances.threads import Threads
from runtime.realtime.change import Change
from runtime.store import Database
from runtime.store import changes as change_rows

log = logging.getLogger("backstate.realtime")
T = TypeVar("T")


class Watcher(Protocol):
    def offer(self, change: Change) -> None:
        """Take the next state (on the event loop, in order, the current one first). Must not
        block: a subscriber that falls behind coalesces its own queue."""


class Source(Protocol):
    """Where other processes' commits come from. `start` returns once every commit from then
    on will be delivered (through the `deliver` the source was built with)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(eq=False)
class Topic:
    org_id: uuid.UUID
    instance_id: uuid.UUID
    machine: str
    instance: str
    watchers: set[Watcher] = field(default_factory=set)
    ready: asyncio.Future[None] = field(default_factory=asyncio.Future)
    head: int = 0                                   # the last seq handed to the watchers
    latest: Change | None = None
    early: dict[int, Change] = field(default_factory=dict)  # arrived before their turn
    filling: asyncio.TimerHandle | None = None

    def wants(self, seq: int) -> bool:
        return seq > self.head


class Hub:
    def __init__(self, db: Database, feed: Feed, source: Callable[[Hub], Source], *,
                 gap_s: float = 1.0, linger_s: float = 30.0):
        self._db = db
        self._feed = feed
        self._source = source(self)
        self._gap_s = gap_s
        self._linger_s = linger_s
        self._topics: dict[uuid.UUID, Topic] = {}
        self._threads = Threads(2, "realtime-db")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._source_lock = asyncio.Lock()
        self._source_running = False
        self._idle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self.skipped = 0   # states a topic never saw: the change log had dropped them

    # --- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        for topic in list(self._topics.values()):
            self._drop(topic)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stop_source()
        self._threads.close()

    def resync_soon(self) -> None:
        """`resync` from the loop (a source's thread calls this through the loop)."""
        self._spawn(self.resync())

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- watching ------------------------------------------------------------------------

    async def watch(self, org_id: uuid.UUID, machine: str, instance: str,
                    watcher: Watcher) -> Topic:
        """Offer `watcher` the instance's current state, then every later one; the topic, to
        `unwatch` later. NotFoundError if there is no such instance."""
        instance_id = await self._read(change_rows.resolve, org_id, machine, instance)
        topic = self._topics.get(instance_id)
        if topic is None:
            topic = self._topics[instance_id] = Topic(org_id, instance_id, machine, instance)
            self._attach()
            self._spawn(self._begin(topic))
        elif topic.ready.done() and topic.latest is not None:
            watcher.offer(topic.latest)
        topic.watchers.add(watcher)
        try:
            await asyncio.shield(topic.ready)
        except BaseException:
            self.unwatch(topic, watcher)
            raise
        return topic

    def unwatch(self, topic: Topic, watcher: Watcher) -> None:
        topic.watchers.discard(watcher)
        if not topic.watchers and self._topics.get(topic.instance_id) is topic:
            self._drop(topic)

    def watched(self, instance_id: uuid.UUID, seq: int) -> bool:
        """Whether some watcher here still waits for this state (any thread: a hint only)."""
        topic = self._topics.get(instance_id)
        return topic is not None and topic.wants(seq)

    async def _begin(self, topic: Topic) -> None:
        """Start the feed and the source, then read where the instance stands."""
        try:
            await self._start_source()
            row = await self._read(change_rows.current, topic.instance_id)
        except BaseException as exc:
            if not topic.ready.done():
                topic.ready.set_exception(exc)
            if self._topics.get(topic.instance_id) is topic:
                self._drop(topic)
            return
        current = Change.logged(row)
        topic.head, topic.latest = current.seq, current
        for watcher in list(topic.watchers):
            watcher.offer(current)
        topic.ready.set_result(None)
        self._advance(topic)

    def _drop(self, topic: Topic) -> None:
        del self._topics[topic.instance_id]
        if topic.filling is not None:
            topic.filling.cancel()
        if not topic.ready.done():
            topic.ready.cancel()
        if not self._topics:
            self._detach()

    # --- arrivals ------------------------------------------------------------------------

    def deliver(self, changes: Iterable[Change]) -> None:
        """States from a source (on the event loop)."""
        for change in changes:
            topic = self._topics.get(change.instance_id)
            if topic is not None and topic.wants(change.seq):
                topic.early[change.seq] = change
                if topic.ready.done():
                    self._advance(topic)

    def _on_commit(self, committed: StateCommitted) -> None:
        """The feed's listener, on the committing thread: only a hop to the loop, and only
        for watched instances."""
        if committed.instance_id in self._topics and self._loop is not None:
            self._loop.call_soon_threadsafe(self.deliver, (Change.committed(committed),))

    def _advance(self, topic: Topic) -> None:
        while (change := topic.early.pop(topic.head + 1, None)) is not None:
            topic.head, topic.latest = change.seq, change
            for watcher in list(topic.watchers):
                watcher.offer(change)
        for seq in [seq for seq in topic.early if seq <= topic.head]:
            del topic.early[seq]
        if topic.early and topic.filling is None:
            loop = asyncio.get_running_loop()
            topic.filling = loop.call_later(self._gap_s, self._fill_soon, topic)

    def _fill_soon(self, topic: Topic) -> None:
        self._spawn(self._fill(topic))

    async def _fill(self, topic: Topic) -> None:
        """A gap the source has not filled in `gap_s` (it should within its poll): read the
        missing states from the log; skip those it no longer has."""
        topic.filling = None
        if self._topics.get(topic.instance_id) is not topic or not topic.early:
            return
        await self._catch_up(topic)
        if topic.early and topic.head + 1 not in topic.early:
            first = min(topic.early)
            self.skipped += first - topic.head - 1
            log.warning("realtime: states %d to %d of instance %s are no longer in the change "
                        "log; its watchers skip to state %d", topic.head + 1, first - 1,
                        topic.instance_id, first)
            topic.head = first - 1
            self._advance(topic)

    async def resync(self) -> None:
        """A source lost track (its connection dropped): read what it may have missed."""
        for topic in list(self._topics.values()):
            if topic.ready.done():
                await self._catch_up(topic)

    async def _catch_up(self, topic: Topic) -> None:
        try:
            rows = await self._read(change_rows.since, topic.instance_id, topic.head)
        except Exception:
            log.exception("realtime: reading the change log of instance %s failed",
                          topic.instance_id)
            return
        self.deliver(Change.logged(row) for row in rows)

    # --- the feed and the source ---------------------------------------------------------

    def _attach(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._unsubscribe is None:
            self._unsubscribe = self._feed.subscribe(self._on_commit)

    def _detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._loop is not None and self._idle is None:
            self._idle = self._loop.call_later(self._linger_s, self._stop_soon)

    def _stop_soon(self) -> None:
        self._idle = None
        if not self._topics:
            self._spawn(self._stop_source())

    async def _start_source(self) -> None:
        async with self._source_lock:
            if not self._source_running:
                await self._source.start()
                self._source_running = True

    async def _stop_source(self) -> None:
        async with self._source_lock:
            if self._source_running and not self._topics:
                self._source_running = False
                with contextlib.suppress(Exception):
                    await self._source.stop()

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        return await self._threads.run(functools.partial(self._session, fn, *args))

    def _session(self, fn: Callable[..., T], *args: object) -> T:
        with self._db.read() as session:
            return fn(session, *args)
