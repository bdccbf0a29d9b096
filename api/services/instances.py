"""Machine instances: create, read, send events, and the administrative operations."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any

from api import ids
from api.auth import Principal
from api.crypto import hmac_sha256_b64url
from api.errors import PAYLOAD_TOO_LARGE
from api.services.bundles import Bundles
from api.services.locks import InstanceLocks
from api.services.runtime_port import StepRuntime
from api.services.stepping import Stepper, Tracker
from runtime.clock import Clock
from runtime.errors import ConflictError, InvalidRequestError, NotFoundError
from runtime.results import Macrostep, StepResult
from runtime.store import Database, commits
from runtime.store import instances as instance_store
from runtime.store import machines as machine_store
from runtime.store import timers as timer_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.leases import Current, Lease, Target
from runtime.store.models import Instance, Machine, MachineVersion, Transition
from runtime.store.prepared import RawTransaction
from runtime.store.timers import Claimed, TimerSuperseded


def lock_key(org_id: uuid.UUID, machine_name: str, slug: str) -> str:
    return f"{org_id}/{machine_name}/{slug}"


class InstanceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        runtime: StepRuntime,
        *,
        stepper: Stepper,
        bundles: Bundles,
        max_event_bytes: int,
        page_size: int,
    ):
        self._db = db
        self._clock = clock
        self._runtime = runtime
        self._stepper = stepper
        self._bundles = bundles
        self._locks = InstanceLocks()
        self._max_event_bytes = max_event_bytes
        self._page_size = page_size

    # --- stepping -----------------------------------------------------------------------
    # Each step makes one trip to a step thread (see `Stepper.leased`); the `_`-prefixed
    # bodies below run there.

    async def create(
        self,
        principal: Principal,
        machine_name: str,
        slug: str,
        context: dict[str, Any] | None,
        version_id: str | None,
    ) -> dict[str, Any]:
        """Create and start an instance (allowWrite `initialization`); its settled State."""
        body = functools.partial(self._create, principal, machine_name, slug, context, version_id)
        async with self._locks.hold(lock_key(principal.org_id, machine_name, slug)):
            return await self._stepper.new_lease(body)

    def _create(
        self,
        principal: Principal,
        machine_name: str,
        slug: str,
        context: dict[str, Any] | None,
        version_id: str | None,
        lease: Lease,
    ) -> dict[str, Any]:
        machine, version = self._creation_target(principal.org_id, machine_name, slug, version_id)
        tracker = Tracker(seq=0, ts=0)

        def first(tx: RawTransaction, step: Macrostep, ts: int) -> commits.Committed:
            return commits.insert_first(
                tx,
                lease=lease,
                owner=self._stepper.owner,
                lease_expires_at=self._stepper.lease_expiry(),
                machine_id=machine.id,
                slug=slug,
                version_id=version.id,
                step=step,
                ts=ts,
                now=to_datetime(ts),
            )

        result = _guarded(
            tracker,
            lambda: self._runtime.create(
                self._bundles.get(version.id),
                instance_name=slug,
                context=context,
                auth_context=principal.auth_context,
                on_commit=self._stepper.commit_hook(lease, tracker, first),
            ),
        )
        self._save_cut_off(lease, result, [])
        return tracker.wire()

    async def send(
        self, principal: Principal, machine_name: str, slug: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        """Deliver one event (allowWrite `event`) and settle; the resulting State."""
        self._check_event_size(event)
        target = Target.named(principal.org_id, machine_name, slug)
        body = functools.partial(self._send, principal, slug, event)
        async with self._locks.hold(lock_key(principal.org_id, machine_name, slug)):
            return await self._stepper.leased(target, body)

    def _send(
        self,
        principal: Principal,
        slug: str,
        event: dict[str, Any],
        lease: Lease,
        current: Current,
    ) -> dict[str, Any]:
        _ensure_running(current)
        tracker = Tracker(seq=current.seq, ts=current.ts, view=current.view)
        result = _guarded(
            tracker,
            lambda: self._runtime.send(
                self._bundles.get(current.version_id),
                instance_name=slug,
                state_json=current.state_json,
                event=event,
                auth_context=principal.auth_context,
                on_commit=self._stepper.commit_hook(lease, tracker),
                cut_off=list(current.cut_off),
                trusted=False,
            ),
        )
        self._save_cut_off(lease, result, current.cut_off)
        return tracker.wire()

    async def deliver_timer(self, timer: Claimed) -> None:
        """Deliver a due durable timer through the same serialized path as client events (no
        authorizer: these are the machine's own events). The timer row is consumed in the
        transaction of the delivery's first commit, fenced by the claim, so a timer cancelled
        or re-armed meanwhile makes this delivery write nothing. Raises for the scheduler to
        retry (machine failure, paused or busy instance) or drop (instance gone)."""
        assert timer.org_id is not None, "claims carry the names their delivery locks on"
        body = functools.partial(self._deliver_timer, timer)
        async with self._locks.hold(lock_key(timer.org_id, timer.machine, timer.instance)):
            await self._stepper.leased(Target.with_id(timer.instance_id), body)

    def _deliver_timer(self, timer: Claimed, lease: Lease, current: Current) -> None:
        _ensure_running(current)
        tracker = Tracker(seq=current.seq, ts=current.ts, view=current.view)

        def consume(tx: RawTransaction) -> None:
            if not commits.consume_timer(tx, timer.id, timer.claim):
                raise TimerSuperseded(timer.send_id)

        try:
            result = self._runtime.send(
                self._bundles.get(current.version_id),
                instance_name=timer.instance,
                state_json=current.state_json,
                event=timer.event,
                auth_context={},
                on_commit=self._stepper.commit_hook(lease, tracker, with_first=consume),
                cut_off=list(current.cut_off),
                trusted=True,
            )
        except Exception as exc:
            if isinstance(tracker.error, TimerSuperseded):
                return
            raise (tracker.error or exc) from exc
        if result.ignored:  # e.g. the machine is already in its final state
            self._consume(timer)
        self._save_cut_off(lease, result, current.cut_off)

    def _save_cut_off(self, lease: Lease, result: StepResult, before: list[str]) -> None:
        """Each commit stored the services running after it; the step's end may differ (the
        window cut them off, or the step ended early)."""
        stored = list(result.final.running) if result.macrosteps else list(before)
        if result.cut_off != stored:
            self._stepper.save_cut_off(lease, result.cut_off)

    async def read(self, principal: Principal, machine_name: str, slug: str) -> dict[str, Any]:
        """The instance's State, if its `allowRead` lets this caller see it."""
        instance = await self._stepper.db(self._locate, principal.org_id, machine_name, slug)

        def authorize() -> None:
            self._runtime.read(
                self._bundles.get(instance.version_id),
                instance_name=slug,
                state_json=instance.state_json,
                auth_context=principal.auth_context,
            )

        await self._stepper.run_step(authorize)
        return {"ts": instance.ts, **instance.view}

    def _check_event_size(self, event: dict[str, Any]) -> None:
        size = len(json.dumps(event, separators=(",", ":")).encode())
        if size > self._max_event_bytes:
            raise InvalidRequestError(
                f"event is {size} bytes; the limit is {self._max_event_bytes}",
                parameter="event",
                code=PAYLOAD_TOO_LARGE,
            )

    # --- lookups (blocking) ---------------------------------------------------------------

    def _creation_target(
        self, org_id: uuid.UUID, machine_name: str, slug: str, pretty_version: str | None
    ) -> tuple[Machine, MachineVersion]:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            if instance_store.exists(session, machine, slug):
                raise ConflictError(f"instance {slug!r} already exists", code="already-exists")
            if pretty_version is not None:
                version_id = ids.decode("ver", pretty_version)
                if version_id is None:
                    raise NotFoundError("machine version not found", parameter="machineVersionId")
            elif machine.current_version_id is None:
                raise InvalidRequestError(
                    f"machine {machine_name!r} has no current version; pass machineVersionId",
                    parameter="machineVersionId",
                )
            else:
                version_id = machine.current_version_id
            return machine, version_store.get_final(session, machine, version_id)

    def _consume(self, timer: Claimed) -> None:
        with self._db.transaction() as session:
            timer_store.consume(session, timer)

    def _locate(self, org_id: uuid.UUID, machine_name: str, slug: str) -> Instance:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            return instance_store.get(session, machine, slug)

    # --- administration (blocking) --------------------------------------------------------

    def admin_state(
        self, principal: Principal, machine_name: str, slug: str
    ) -> tuple[Instance, MachineVersion]:
        with self._db.transaction() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            instance = instance_store.get(session, machine, slug)
            return instance, version_store.get(session, instance.version_id)

    def list_page(
        self, principal: Principal, machine_name: str, cursor: str | None
    ) -> tuple[list[tuple[Instance, MachineVersion]], str | None]:
        with self._db.transaction() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            rows, next_cursor = instance_store.list_page(
                session, machine, cursor=cursor, limit=self._page_size
            )
            versions = version_store.find_many(session, {row.version_id for row in rows})
            return [(row, versions[row.version_id]) for row in rows], next_cursor

    def transitions(
        self, principal: Principal, machine_name: str, slug: str, cursor: str | None
    ) -> tuple[list[Transition], str | None]:
        after = _seq_cursor(cursor)
        with self._db.transaction() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            instance = instance_store.get(session, machine, slug)
            rows, last = instance_store.transitions_page(
                session, instance, after_seq=after, limit=self._page_size
            )
            return rows, None if last is None else str(last)

    def set_status(self, principal: Principal, machine_name: str, slug: str, status: str) -> None:
        with self._db.transaction() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            instance_store.set_status(session, machine, slug, status)

    def delete(self, principal: Principal, machine_name: str, slug: str, confirmation: str) -> None:
        if confirmation != hmac_sha256_b64url(machine_name, slug):
            raise InvalidRequestError(
                "confirmation HMAC does not match the instance name",
                parameter="hmacSha256OfMachineInstanceNameWithMachineNameKey",
            )
        with self._db.transaction() as session:
            machine = machine_store.get(session, principal.org_id, machine_name)
            instance_store.delete_one(session, machine, slug)


def _guarded(tracker: Tracker, step: Callable[[], StepResult]) -> StepResult:
    """Run a step; if our commit hook failed, report its error rather than the runtime's
    wrapping of it."""
    try:
        result = step()
    except Exception as exc:
        if tracker.error is not None and tracker.error is not exc:
            raise tracker.error from exc
        raise
    if tracker.view is None:  # nothing committed (cannot happen for a create)
        raise ConflictError("the step committed no state", code="invalid-state")
    return result


def _ensure_running(instance: Current) -> None:
    if instance.status != instance_store.RUNNING:
        raise ConflictError(f"instance {instance.slug!r} is paused", code="invalid-state")


def _seq_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise InvalidRequestError("cursor is not valid", parameter="cursor")
    return int(cursor)
