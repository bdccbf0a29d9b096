"""`/machines`: list, create, get, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api import views
from api.auth import Principal
from api.deps import MachineName, ServicesDep, requires
from api.openapi import errors
from api.schemas import MachineCreate, MachineDelete, MachineGet, MachineList

router = APIRouter(tags=["machines"])


@router.get(
    "/machines", response_model=MachineList, response_model_exclude_none=True, responses=errors()
)
def list_machines(
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machines.read"))],
    cursor: str | None = None,
) -> MachineList:
    """List the org's machines, oldest first."""
    rows, next_cursor = services.machines.list_page(principal.org_id, cursor)
    return MachineList(machines=[views.machine_summary(m, v) for m, v in rows], cursor=next_cursor)


@router.post(
    "/machines",
    status_code=201,
    response_class=Response,
    responses=errors((409, "a machine with this name exists"), 413),
)
def create_machine(
    body: MachineCreate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machines.write"))],
) -> Response:
    """Create a machine (no versions yet)."""
    services.machines.create(principal.org_id, body.slug)
    return Response(status_code=201)


@router.get(
    "/machines/{machineName}",
    response_model=MachineGet,
    response_model_exclude_none=True,
    responses=errors((404, "no such machine")),
)
def get_machine(
    machine_name: MachineName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machines.read"))],
) -> MachineGet:
    """A machine and its current version."""
    machine, current = services.machines.get(principal.org_id, machine_name)
    return MachineGet(machine=views.machine_public(machine, current))


@router.delete(
    "/machines/{machineName}",
    status_code=204,
    response_class=Response,
    responses=errors((404, "no such machine"), (409, "the machine still has instances"), 413),
)
def delete_machine(
    machine_name: MachineName,
    body: MachineDelete,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machines.admin"))],
) -> Response:
    """Delete a machine and all its versions; 409 while it has instances."""
    services.machines.delete(
        principal.org_id, machine_name, body.hmacSha256OfMachineNameWithMachineNameKey
    )
    return Response(status_code=204)
