"""Instances of a machine: create, read, events, transitions, status, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from api import views
from api.auth import Principal
from api.deps import InstanceName, MachineName, ServicesDep, requires
from api.openapi import errors
from api.schemas import (
    DesiredVersionUpdate,
    EventSend,
    InstanceAdmin,
    InstanceCreate,
    InstanceDelete,
    InstanceList,
    InstanceState,
    StatusUpdate,
    TransitionList,
)
from api.scopes import SEND_EVENT_SCOPES

router = APIRouter(tags=["instances"])

NO_MACHINE = (404, "no such machine")
NO_INSTANCE = (404, "no such machine or instance")
BUSY = "the instance is busy with another step (`instance-busy`)"


@router.post(
    "/machines/{machineName}",
    responses=errors(
        (404, "no such machine or machine version"),
        (409, f"an instance with this name exists (`already-exists`), or {BUSY}"),
        413,
        ok=InstanceState,
    ),
)
async def create_instance(
    machine_name: MachineName,
    body: InstanceCreate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.write"))],
) -> dict[str, Any]:
    """Create an instance of the machine's current (or the given) version; its State."""
    return await services.instances.create(
        principal, machine_name, body.slug, body.context, body.machineVersionId
    )


@router.get(
    "/machines/{machineName}/i",
    response_model=InstanceList,
    response_model_exclude_none=True,
    responses=errors(NO_MACHINE),
)
def list_instances(
    machine_name: MachineName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.read"))],
    cursor: str | None = None,
) -> InstanceList:
    """List the machine's instances, oldest first."""
    rows, next_cursor = services.instances.list_page(principal, machine_name, cursor)
    return InstanceList(
        instances=[views.instance_summary(i, v) for i, v in rows], cursor=next_cursor
    )


@router.get(
    "/machines/{machineName}/i/{instanceName}",
    responses=errors(NO_INSTANCE, ok=InstanceState),
)
async def get_instance(
    machine_name: MachineName,
    instance_name: InstanceName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("state.read"))],
) -> dict[str, Any]:
    """The instance's State, if its `allowRead` admits the caller."""
    return await services.instances.read(principal, machine_name, instance_name)


@router.delete(
    "/machines/{machineName}/i/{instanceName}",
    status_code=204,
    response_class=Response,
    responses=errors(NO_INSTANCE, 413),
)
async def delete_instance(
    machine_name: MachineName,
    instance_name: InstanceName,
    body: InstanceDelete,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.admin"))],
) -> Response:
    """Delete the instance with its transitions and pending timers."""
    await services.instances.delete(
        principal,
        machine_name,
        instance_name,
        body.hmacSha256OfMachineInstanceNameWithMachineNameKey,
    )
    return Response(status_code=204)


@router.get(
    "/machines/{machineName}/i/{instanceName}/admin",
    responses=errors(NO_INSTANCE, ok=InstanceAdmin),
)
def get_instance_admin(
    machine_name: MachineName,
    instance_name: InstanceName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.admin"))],
) -> dict[str, Any]:
    """The full administrative view (whole context, status, version); no authorizer runs."""
    instance, version, desired = services.instances.admin_state(
        principal, machine_name, instance_name
    )
    return views.admin_state(instance, version, desired)


@router.get(
    "/machines/{machineName}/i/{instanceName}/events",
    responses=errors(NO_INSTANCE, ok=TransitionList),
)
def list_transitions(
    machine_name: MachineName,
    instance_name: InstanceName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.admin"))],
    cursor: str | None = None,
) -> dict[str, Any]:
    """The instance's transitions, oldest first."""
    rows, next_cursor = services.instances.transitions(
        principal, machine_name, instance_name, cursor
    )
    body: dict[str, Any] = {"transitions": [views.transition(row) for row in rows]}
    if next_cursor is not None:
        body["cursor"] = next_cursor
    return body


@router.post(
    "/machines/{machineName}/i/{instanceName}/events",
    responses=errors(
        NO_INSTANCE,
        (409, f"the instance is paused (`invalid-state`), or {BUSY}"),
        413,
        ok=InstanceState,
    ),
)
async def send_event(
    machine_name: MachineName,
    instance_name: InstanceName,
    body: EventSend,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires(*SEND_EVENT_SCOPES))],
) -> dict[str, Any]:
    """Send an event and wait for the instance to settle; its State."""
    assert isinstance(body.event, dict)  # normalized by EventSend
    return await services.instances.send(principal, machine_name, instance_name, body.event)


@router.put(
    "/machines/{machineName}/i/{instanceName}/status",
    status_code=204,
    response_class=Response,
    responses=errors(NO_INSTANCE, 413),
)
async def set_status(
    machine_name: MachineName,
    instance_name: InstanceName,
    body: StatusUpdate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.admin"))],
) -> Response:
    """Pause or resume: a paused instance rejects every event with 409."""
    await services.instances.set_status(principal, machine_name, instance_name, body.status)
    return Response(status_code=204)


@router.put(
    "/machines/{machineName}/i/{instanceName}/v",
    status_code=201,
    response_class=Response,
    responses=errors((404, "no such machine, instance or version"), 413),
)
async def set_desired_version(
    machine_name: MachineName,
    instance_name: InstanceName,
    body: DesiredVersionUpdate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.write"))],
) -> Response:
    """Upgrade the instance to this version at its next event delivered while it is settled;
    400 `no-migration-path` unless migrations lead there from its version."""
    await services.instances.set_desired_version(
        principal, machine_name, instance_name, body.targetMachineVersionId
    )
    return Response(status_code=201)
