"""Machine instances: create, read, send events, list, transitions, subscriptions, and the
administrative and dangerous calls."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from backstate_client._errors import ApiError, ConflictError, NotFoundError
from backstate_client._flow import Flow, Request, call, cursor_query, path
from backstate_client._machines import deletion_hmac
from backstate_client._namespace import Async, Mode, Namespace, Runner, Sync, operation
from backstate_client._state import enhance_state
from backstate_client._types import (
    AdminInstanceState,
    Event,
    InstancePage,
    InstanceStatus,
    State,
    TransitionPage,
)

if TYPE_CHECKING:
    from backstate_client._subscription import AsyncSubscription, Subscription

Context = Mapping[str, Any]
OnState = Callable[[State], None]
OnError = Callable[[ApiError], None]


class MachineInstances(Namespace[Mode]):
    """Instances of a machine: each has its own state, authorizes its own reads and writes,
    and receives its own events."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.admin: InstancesAdmin[Mode] = InstancesAdmin(runner)
        self.dangerously: InstancesDangerously[Mode] = InstancesDangerously(runner)

    @operation
    def list(self, machine_name: str, cursor: str | None = None) -> Flow[InstancePage]:
        """A page of the machine's instances."""
        where = path("machines", machine_name, "i")
        page: InstancePage = yield from call(Request("GET", where, query=cursor_query(cursor)))
        return page

    @operation
    def list_transitions(
        self, machine_name: str, instance_name: str, cursor: str | None = None
    ) -> Flow[TransitionPage]:
        """A page of the instance's transitions, oldest first (needs an admin key)."""
        where = path("machines", machine_name, "i", instance_name, "events")
        page: TransitionPage = yield from call(Request("GET", where, query=cursor_query(cursor)))
        return page

    @operation
    def create(
        self,
        machine_name: str,
        instance_name: str,
        *,
        context: Context | None = None,
        machine_version_id: str | None = None,
    ) -> Flow[State]:
        """Create an instance (`ConflictError` if it exists) of the machine's current version,
        or of `machine_version_id`; `context` is merged over the machine's initial context.
        Its `allowWrite` sees an "initialization" request. The initial state."""
        return (yield from _create(machine_name, instance_name, context, machine_version_id))

    @operation
    def get(self, machine_name: str, instance_name: str) -> Flow[State]:
        """The instance's state, if its `allowRead` admits the caller (`NotFoundError` if
        there is no such instance)."""
        return (yield from _get(machine_name, instance_name))

    @operation
    def get_or_create(
        self,
        machine_name: str,
        instance_name: str,
        *,
        context: Context | Callable[[], Context] | None = None,
        machine_version_id: str | None = None,
    ) -> Flow[State]:
        """The instance's state, creating it first if it does not exist. `context` (or a
        function making it, called only if the instance is created) is its initial context.
        Safe against a concurrent creator: whoever loses the race reads the winner's."""
        try:
            return (yield from _get(machine_name, instance_name))
        except NotFoundError:
            pass
        initial = context() if callable(context) else context
        try:
            return (yield from _create(machine_name, instance_name, initial, machine_version_id))
        except ConflictError:
            return (yield from _get(machine_name, instance_name))

    @operation
    def send_event(self, machine_name: str, instance_name: str, event: Event) -> Flow[State]:
        """Send an event (a type, or an object with a `type`) and wait until the instance
        settles; its new state. `ConflictError` if the instance is paused."""
        where = path("machines", machine_name, "i", instance_name, "events")
        raw = yield from call(Request("POST", where, json={"event": event}))
        return enhance_state(raw)

    @overload
    def subscribe(
        self: MachineInstances[Sync],
        machine_name: str,
        instance_name: str,
        on_state: OnState | None = None,
        on_error: OnError | None = None,
    ) -> Subscription: ...
    @overload
    def subscribe(
        self: MachineInstances[Async],
        machine_name: str,
        instance_name: str,
        on_state: OnState | None = None,
        on_error: OnError | None = None,
    ) -> Coroutine[Any, Any, AsyncSubscription]: ...
    def subscribe(
        self,
        machine_name: str,
        instance_name: str,
        on_state: OnState | None = None,
        on_error: OnError | None = None,
    ) -> Any:
        """Follow the instance's state over the `/rt` WebSocket: the current state at once,
        then each new one. Without `on_state`/`on_error`, iterate over the subscription to get
        the states (its errors are raised there). The socket is shared by the client's
        subscriptions, reconnects by itself and re-subscribes; close the subscription (or
        leave its `with` block) to stop. Updates made while reconnecting may be missed: count
        only on seeing the latest state."""
        return self._runner.subscribe(machine_name, instance_name, on_state, on_error)


class InstancesAdmin(Namespace[Mode]):
    """Administrative views and changes (no authorizer runs)."""

    @operation
    def get(self, machine_name: str, instance_name: str) -> Flow[AdminInstanceState]:
        """The whole instance: full context, status, version and desired version."""
        where = path("machines", machine_name, "i", instance_name, "admin")
        state: AdminInstanceState = yield from call(Request("GET", where))
        return state

    @operation
    def update_desired_version(
        self, machine_name: str, instance_name: str, target_machine_version_id: str
    ) -> Flow[None]:
        """Move the instance to another version at its next event delivered while it is
        settled, through the migrations between the two (`NoMigrationPathError` if none
        lead there)."""
        where = path("machines", machine_name, "i", instance_name, "v")
        body = {"targetMachineVersionId": target_machine_version_id}
        yield from call(Request("PUT", where, json=body))


class InstancesDangerously(Namespace[Mode]):
    """Calls that lose data or can break a machine's guarantees."""

    @operation
    def set_status(
        self, machine_name: str, instance_name: str, status: InstanceStatus
    ) -> Flow[None]:
        """Pause ("paused") or resume ("running") the instance. A paused instance refuses
        every event, its own delayed events too (which are dropped after a few retries)."""
        where = path("machines", machine_name, "i", instance_name, "status")
        yield from call(Request("PUT", where, json={"status": status}))

    @operation
    def delete(
        self,
        machine_name: str,
        instance_name: str,
        *,
        danger_data_will_be_deleted_forever: Literal[True],
    ) -> Flow[None]:
        """Delete the instance with its transitions, pending events and state, for good."""
        body = {
            "dangerDataWillBeDeletedForever": danger_data_will_be_deleted_forever,
            "hmacSha256OfMachineInstanceNameWithMachineNameKey": deletion_hmac(
                machine_name, instance_name
            ),
        }
        where = path("machines", machine_name, "i", instance_name)
        yield from call(Request("DELETE", where, json=body))


def _get(machine_name: str, instance_name: str) -> Flow[State]:
    raw = yield from call(Request("GET", path("machines", machine_name, "i", instance_name)))
    return enhance_state(raw)


def _create(
    machine_name: str,
    instance_name: str,
    context: Context | None,
    machine_version_id: str | None,
) -> Flow[State]:
    body: dict[str, Any] = {"slug": instance_name}
    if context is not None:
        body["context"] = dict(context)
    if machine_version_id is not None:
        body["machineVersionId"] = machine_version_id
    raw = yield from call(Request("POST", path("machines", machine_name), json=body))
    return enhance_state(raw)
