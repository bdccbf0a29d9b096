"""`Instances`: an instance's life, behind one facade.

    instances = Instances(db, runtime, clock, InstancesConfig(...))
    await instances.start()                      # the lease renewer, the timer scheduler
    state = await instances.create(org_id, "m", "i", context=None, version_id=None,
                                   auth_context={"sub": "u"})
    state = await instances.send(org_id, "m", "i", {"type": "go"}, auth_context={...})
    state = await instances.read(org_id, "m", "i", auth_context={...})   # allowRead
    instances.feed.subscribe(listener)           # every committed state, see feed.py
    Instances(..., logs=StepLogs(sink, clock))   # each step's console lines, see runtime/logs
    await instances.aclose()

Plain values in (names, events, auth contexts), plain results out (`InstanceState`), errors
from `runtime.errors`. Every step of an instance takes, in this order: its place in the
instance's per-process queue (`mailbox.py`: arrival order; events queued together run as one
step, `batches.py`), a lane (`lanes.py`), one trip to a step thread (`threads.py`) where the
`Runner` serializes it across processes and commits it (`commits.py`, `committer.py`), and the
version from the process's one cache (`versions.py`). Due timers come from the scheduler
(`runtime/scheduler.py`), which this facade runs and which delivers through `deliver_timer`,
the path of a client event, and the outbox entries of instances that create persistent children
or send events to other instances (`outbox.py`), which it delivers through the receiver's path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from runtime import metrics
from runtime.clock import Clock
from runtime.engine import LoadedVersion, ReadVerdicts, Runtime
from runtime.errors import (
    BackstateError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    TimerSupersededError,
)
from runtime.instances import batches, outbox
from runtime.instances.commits import Insert, StepCommits
from runtime.instances.feed import Feed
from runtime.instances.lanes import Lanes, in_lane
from runtime.instances.leases import LeaseKeeper
from runtime.instances.mailbox import Mailboxes, Work
from runtime.instances.runner import Runner
from runtime.instances.threads import Threads
from runtime.instances.timers import TimerTable
from runtime.instances.upgrades import Upgrades
from runtime.instances.versions import Versions
from runtime.logs import LogOrigin, StepLogs
from runtime.results import CommitHook, Delivery, InstanceState, StepResult
from runtime.scheduler import RetryPolicy, Scheduler
from runtime.store import Database, creations
from runtime.store import instances as instance_rows
from runtime.store import machines as machine_rows
from runtime.store.leases import Current, Target
from runtime.store.models import Instance
from runtime.store.timers import Claimed

T = TypeVar("T")
log = logging.getLogger("backstate.outbox")

# A step running this long gives its lane back (see lanes.py): an event's step takes a few ms.
LANE_HOLD_S = 0.05
DB_THREADS = 8


@dataclass(frozen=True)
class _Event:
    """An event waiting in its instance's mailbox: a client's, or a due timer's (`timer`, the
    claimed row its first commit consumes)."""

    target: Target
    names: tuple[uuid.UUID, str]   # org id and machine, for the step's log lines
    delivery: Delivery
    timer: Claimed | None = None


@dataclass(frozen=True)
class InstancesConfig:
    step_threads: int = 64
    step_lanes: int = 0             # steps starting at once; 0: one per CPU (see lanes.py)
    lease_ttl_s: float = 30.0
    lease_wait_s: float = 150.0
    cached_versions: int = 64
    timer_poll_s: float = 1.0       # how often other processes' timers are looked for
    timer_claim_s: float = 15.0     # how soon a crashed process's claimed timers are free
    timer_attempts: int = 5
    timer_retry_s: float = 30.0
    timer_concurrency: int = 32
    max_batch: int = 32             # events for one instance run together at most


class Instances:
    def __init__(self, db: Database, runtime: Runtime, clock: Clock,
                 config: InstancesConfig | None = None, *, logs: StepLogs | None = None):
        config = config or InstancesConfig()
        self.logs = logs or StepLogs(None, clock)
        self._db = db
        self._runtime = runtime
        self._mail = Mailboxes(max_batch=config.max_batch)
        self._lanes = Lanes(config.step_lanes or os.cpu_count() or 1, LANE_HOLD_S)
        self._steps = Threads(config.step_threads, "step")
        # Short database work (reads, the scheduler's claims) has threads of its own: machines
        # waiting on fetches in every step thread must not hold it up.
        self._db_threads = Threads(DB_THREADS, "db")
        self._leases = LeaseKeeper(db, clock, ttl_s=config.lease_ttl_s,
                                   wait_s=config.lease_wait_s)
        self._versions = Versions(db, runtime, size=config.cached_versions)
        self._upgrades = Upgrades(db, runtime, self._versions, cached=config.cached_versions)
        self.feed = Feed()
        table = self._timer_table = TimerTable(db, self._db_threads, owner=self._leases.owner,
                                               claim_ms=int(config.timer_claim_s * 1000))
        self.scheduler = Scheduler(
            table, self.deliver_timer, clock,
            retry=RetryPolicy(attempts=config.timer_attempts, delay_s=config.timer_retry_s),
            poll_s=config.timer_poll_s, concurrency=config.timer_concurrency,
            on_dropped=self._timer_dropped,
        )  # fmt: skip
        self._runner = Runner(db, clock, self._leases, self.feed,
                              on_timers_armed=self.scheduler.notify)
        self._timers: asyncio.Task[None] | None = None

    # --- life of the facade --------------------------------------------------------------

    async def start(self, *, timers: bool = True) -> None:
        """Start the lease renewer and, with `timers`, the timer scheduler on this loop."""
        self._leases.keep_renewing()
        if timers:
            self._timers = asyncio.get_running_loop().create_task(self.scheduler.run())

    async def aclose(self) -> None:
        """Stop delivering timers (their claims expire and another process, or this one
        after a restart, delivers them) and let running database work finish."""
        if self._timers is not None:
            self._timers.cancel()
            await asyncio.gather(self._timers, return_exceptions=True)
            await self.scheduler.aclose()
        await self._mail.aclose()
        self._leases.close()
        self._steps.close()
        self._db_threads.close()

    # --- steps ---------------------------------------------------------------------------

    async def create(self, org_id: uuid.UUID, machine: str, instance: str, *,
                     context: dict[str, Any] | None, version_id: uuid.UUID | None,
                     auth_context: dict[str, Any]) -> InstanceState:
        """Create and start an instance of `version_id` (default: the machine's current
        version), authorized by its `allowWrite` (`initialization`); its settled state."""
        create = functools.partial(self._create, org_id, machine, instance, context, version_id,
                                   auth_context)
        work = Work(self._run_alone, payload=create)
        state: InstanceState = await self._mail.submit((org_id, machine, instance), work)
        metrics.INSTANCES_CREATED.inc()
        return state

    def _create(self, org_id: uuid.UUID, machine: str, instance: str,
                context: dict[str, Any] | None, version_id: uuid.UUID | None,
                auth_context: dict[str, Any], *, parent: dict[str, Any] | None = None,
                timer: Claimed | None = None) -> InstanceState:
        row = self._new_row(org_id, machine, instance, version_id, parent)
        version = self._versions.get(row.version_id)

        def body(commits: StepCommits) -> StepResult:
            origin = LogOrigin(org_id, machine, instance, row.version_id)
            return self.logs.step(origin, functools.partial(
                self._runtime.create, version, instance_name=instance, context=context,
                auth_context=auth_context, on_commit=commits,
                instance_key=str(commits.instance_id), parent=parent,
            ))  # fmt: skip

        return self._runner.create(row, body, timer=timer)

    async def send(self, org_id: uuid.UUID, machine: str, instance: str,
                   event: dict[str, Any], *, auth_context: dict[str, Any]) -> InstanceState:
        """Deliver one event, authorized by the instance's `allowWrite`, and settle; the
        resulting state. Events that queue for one instance meanwhile run together
        (`mailbox.py`), each still its own transition, failing alone."""
        started = time.perf_counter()
        try:
            self._check_event_size(event)
            target = Target.named(org_id, machine, instance)
            pending = _Event(target, (org_id, machine), Delivery(event, auth_context))
            work = Work(self._run_events, batch=target, payload=pending)
            state: InstanceState = await self._mail.submit((org_id, machine, instance), work)
        except Exception:
            metrics.event_answered(started, ok=False)
            raise
        metrics.event_answered(started, ok=True)
        return state

    async def deliver_timer(self, timer: Claimed) -> bool:
        """Deliver a due durable timer through the path of a client event, as the machine's
        own event (no authorizer); whether it was. Due timers of one instance queued together
        run as one batch, as client events do. A timer cancelled, re-armed or delivered by
        another process meanwhile (or by an earlier event of its batch) is dropped quietly
        (False); anything else raises for the scheduler to retry (machine failure, paused or
        busy instance) or drop (instance gone)."""
        assert timer.org_id is not None, "claims carry the names their delivery locks on"
        if timer.delivery is not None:
            await self._deliver_outbox(timer)
            return True
        target = Target.with_id(timer.instance_id)
        delivery = Delivery(timer.event, {}, trusted=True, send_id=timer.send_id)
        work = Work(self._run_events, batch=target,
                    payload=_Event(target, (timer.org_id, timer.machine), delivery, timer))
        try:
            await self._mail.submit((timer.org_id, timer.machine, timer.instance), work)
        except TimerSupersededError:
            return False
        return True

    async def _deliver_outbox(self, timer: Claimed) -> None:
        """Create a persistent child or deliver an event to another instance (`outbox.py`)
        through the receiver's path. Raises as `deliver_timer` does, after a log line for
        what will not be retried; a child that exists already is dropped here."""
        assert timer.org_id is not None
        try:
            entry = outbox.parse(timer)
        except ValueError as exc:
            log.error("outbox entry %r of instance %s dropped: %s", timer.send_id,
                      timer.instance_id, exc)
            await self._timer_table.drop(timer)
            return
        key = (timer.org_id, entry.machine, entry.instance)
        if isinstance(entry, outbox.Child):
            run: Callable[[], Any] = functools.partial(
                self._create, timer.org_id, entry.machine, entry.instance, entry.context,
                entry.version_id, entry.auth_context, parent=entry.parent, timer=timer)
        else:
            body = functools.partial(self._events_body, (timer.org_id, entry.machine),
                                     [entry.delivery])
            run = functools.partial(self._runner.existing,
                                    Target.named(timer.org_id, entry.machine, entry.instance),
                                    body, timers=[timer])
        try:
            await self._mail.submit(key, Work(self._run_alone, payload=run))
        except TimerSupersededError:
            return   # cancelled meanwhile, or delivered by another process
        except ConflictError as exc:
            if isinstance(entry, outbox.Child) and exc.code == "already-exists":
                log.error("%s dropped: the instance already exists", outbox.describe(timer, entry))
                await self._timer_table.drop(timer)
                return
            raise
        except (NotFoundError, InvalidRequestError) as exc:
            log.error("%s dropped: %s", outbox.describe(timer, entry), exc)
            raise

    async def _run_alone(self, batch: list[Work]) -> list[Work]:
        (work,) = batch
        try:
            work.future.set_result(await self._on_step_thread(work.payload))
        except Exception as exc:
            work.future.set_exception(exc)
        return []

    async def _run_events(self, batch: list[Work]) -> list[Work]:
        events: list[_Event] = [work.payload for work in batch]
        deliveries = [event.delivery for event in events]
        run = functools.partial(
            self._runner.existing, events[0].target,
            functools.partial(self._events_body, events[0].names, deliveries),
            timers=[event.timer for event in events],
            answer=functools.partial(batches.answers, deliveries))
        try:
            results = await self._on_step_thread(run)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return []
            # A failure before the batch committed anything (the first event refused, a VM
            # trap): each event runs alone, so that only the one at fault fails.
            for work in batch:
                await self._run_events([work])
            return []
        unrun = []
        for work, answer in zip(batch, results, strict=True):
            if answer is None:
                unrun.append(work)
            elif isinstance(answer, Exception):
                work.future.set_exception(answer)
            else:
                work.future.set_result(answer)
        return unrun

    def _events_body(self, names: tuple[uuid.UUID, str], deliveries: list[Delivery],
                     current: Current, commits: StepCommits) -> StepResult:
        org_id, machine = names
        origin = LogOrigin(org_id, machine, current.slug, current.version_id)
        # A batch that fails runs again event by event (`_run_events`): those runs keep the
        # lines.
        alone = len(deliveries) == 1
        if self._upgrades.pending(current):  # a desired version: upgrade first (upgrades.py)
            assert current.desired_version_id is not None
            upgraded = dataclasses.replace(origin, version_id=current.desired_version_id)
            return self.logs.step(upgraded, functools.partial(
                self._upgrade_then_send, deliveries[0], current, commits),
                failed_origin=origin, keep_failure=alone)
        return self.logs.step(origin, functools.partial(
            self._runtime.send_batch, self._versions.get(current.version_id),
            instance_name=current.slug, state_json=current.state_json, deliveries=deliveries,
            on_commit=commits, cut_off=list(current.cut_off), instance_key=str(current.id),
            seq=current.seq, parent=current.parent,
        ), keep_failure=alone)  # fmt: skip

    def _upgrade_then_send(self, delivery: Delivery, current: Current,
                           commits: StepCommits) -> StepResult:
        """The upgrade, then `delivery` alone on the new version: events queued behind it run
        in the next step (`batches.answers` leaves them unanswered). Its lines, the
        migrations' included, are the new version's; if it fails, the old one's."""
        def on_new_version(version: LoadedVersion, state_json: str,
                           hook: CommitHook) -> StepResult:
            return self._runtime.send(
                version, instance_name=current.slug, state_json=state_json,
                event=delivery.event, auth_context=delivery.auth_context, on_commit=hook,
                trusted=delivery.trusted, parent=current.parent)

        return self._upgrades.send(current, commits, delivery.event, trusted=delivery.trusted,
                                   run=on_new_version)

    async def read(self, org_id: uuid.UUID, machine: str, instance: str, *,
                   auth_context: dict[str, Any]) -> InstanceState:
        """The instance's state, if its `allowRead` lets `auth_context` see it."""
        row = await self._db_threads.run(functools.partial(self._row, org_id, machine, instance))
        await self.authorize_read(org_id, machine, instance, version_id=row.version_id,
                                  state_json=row.state_json, auth_context=auth_context)
        return InstanceState(row.ts, row.view)

    async def authorize_read(self, org_id: uuid.UUID, machine: str, instance: str, *,
                             version_id: uuid.UUID, state_json: str,
                             auth_context: dict[str, Any]) -> None:
        """RejectedByAuthorizerError unless the instance's `allowRead` lets `auth_context`
        see this state of it (also each state the realtime feed sends: runtime/realtime)."""
        def authorize() -> None:
            self.logs.read(LogOrigin(org_id, machine, instance, version_id), functools.partial(
                self._runtime.read, self._versions.get(version_id), instance_name=instance,
                state_json=state_json, auth_context=auth_context), lambda lines: lines)

        await self._on_step_thread(authorize)

    async def authorize_reads(self, org_id: uuid.UUID, machine: str, instance: str, *,
                              version_id: uuid.UUID, state_json: str,
                              auth_contexts: list[dict[str, Any]]) -> list[BackstateError | None]:
        """`allowRead`'s verdict on this state for each of `auth_contexts` (None: allowed),
        in one call into the sandbox: the realtime feed's check of a state for its readers."""
        def authorize() -> ReadVerdicts:
            return self.logs.read(LogOrigin(org_id, machine, instance, version_id),
                                  functools.partial(
                self._runtime.read_many, self._versions.get(version_id), instance_name=instance,
                state_json=state_json, auth_contexts=auth_contexts), lambda done: done[1])

        verdicts, _lines = await self._on_step_thread(authorize)
        return verdicts

    # --- administration ------------------------------------------------------------------

    async def set_status(self, org_id: uuid.UUID, machine: str, instance: str,
                         status: str) -> None:
        """Pause or resume: a paused instance refuses every event, timers included."""
        await self._db_threads.run(functools.partial(
            self._set_status, org_id, machine, instance, status))

    async def set_desired_version(self, org_id: uuid.UUID, machine: str, instance: str,
                                  version_id: uuid.UUID) -> None:
        """Upgrade the instance to `version_id` at its next event delivered while it is
        settled (see upgrades.py); NoMigrationPathError if no migrations lead there."""
        await self._db_threads.run(functools.partial(
            self._upgrades.set_desired, org_id, machine, instance, version_id))

    async def delete(self, org_id: uuid.UUID, machine: str, instance: str) -> None:
        """Delete the instance with its transitions and timers. A step running meanwhile is
        not waited for: its next commit is refused."""
        await self._db_threads.run(functools.partial(self._delete, org_id, machine, instance))

    # --- plumbing ------------------------------------------------------------------------

    def _timer_dropped(self, timer: Claimed, reason: str) -> None:
        if timer.org_id is not None:
            origin = LogOrigin(timer.org_id, timer.machine, timer.instance, None)
            self.logs.runtime(origin, f"timer {timer.send_id!r} dropped: {reason}")

    async def _on_step_thread(self, fn: Callable[[], T]) -> T:
        self._leases.keep_renewing()
        async with self._lanes.lane() as give_back:
            return await self._steps.run(functools.partial(in_lane, give_back, fn))

    def _check_event_size(self, event: dict[str, Any]) -> None:
        limit = self._runtime.limits.event_bytes
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
        if size > limit:
            raise PayloadTooLargeError(f"the event is {size} bytes of JSON; the limit is {limit}",
                                       parameter="event")

    def _new_row(self, org_id: uuid.UUID, machine: str, instance: str,
                 version_id: uuid.UUID | None, parent: dict[str, Any] | None = None) -> Insert:
        with self._db.raw_read() as tx:
            found = creations.target(tx, org_id, machine, instance, version_id)
        return Insert(found.machine_id, instance, found.version_id, parent)

    def _row(self, org_id: uuid.UUID, machine: str, instance: str) -> Instance:
        with self._db.read() as session:
            return instance_rows.get(session, machine_rows.get(session, org_id, machine), instance)

    def _set_status(self, org_id: uuid.UUID, machine: str, instance: str, status: str) -> None:
        with self._db.transaction() as session:
            instance_rows.set_status(session, machine_rows.get(session, org_id, machine),
                                     instance, status)

    def _delete(self, org_id: uuid.UUID, machine: str, instance: str) -> None:
        with self._db.transaction() as session:
            instance_rows.delete_one(session, machine_rows.get(session, org_id, machine),
                                     instance)

