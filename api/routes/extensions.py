"""backstate's own endpoints, beyond State Backed's API (the dashboard uses them; so may anyone
with a key holding their scopes). See README, "Endpoints beyond State Backed's API"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from api.auth import Principal
from api.deps import InstanceName, MachineName, ServicesDep, requires
from api.openapi import errors
from api.schemas import (
    BundleBuild,
    BundleBuilt,
    CurrentVersionUpdate,
    TimerList,
    TimerPublic,
    VersionDefinition,
    iso,
)

router = APIRouter(tags=["backstate extensions"])

VersionId = Annotated[str, Path(alias="machineVersionId")]
NO_VERSION = (404, "no such machine, or no such finalized version of it")


@router.get(
    "/machines/{machineName}/v/{machineVersionId}/definition",
    responses=errors((404, f"{NO_VERSION[1]}, or its code is gone"), ok=VersionDefinition),
)
def get_definition(
    machine_name: MachineName,
    version_id: VersionId,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.read", "instances.read"))],
) -> dict[str, Any]:
    """The version's state chart: its machine's structure, read from the machine in the
    sandbox when the version was finalized (format: `runtime/definitions.py`)."""
    definition = services.extensions.definition(principal.org_id, machine_name, version_id)
    return {"machineVersionId": version_id, "definition": definition}


@router.put(
    "/machines/{machineName}/current-version",
    status_code=204,
    response_class=Response,
    responses=errors(NO_VERSION, 413),
)
def set_current_version(
    machine_name: MachineName,
    body: CurrentVersionUpdate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.write"))],
) -> Response:
    """Make a finalized version the machine's current one (what new instances start in)."""
    services.extensions.make_current(principal.org_id, machine_name, body.machineVersionId)
    return Response(status_code=204)


@router.get(
    "/machines/{machineName}/i/{instanceName}/timers",
    response_model=TimerList,
    responses=errors((404, "no such machine or instance")),
)
def list_timers(
    machine_name: MachineName,
    instance_name: InstanceName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("instances.admin"))],
) -> TimerList:
    """The instance's pending durable timers (`after` delays and delayed sends), due first."""
    rows = services.extensions.timers(principal.org_id, machine_name, instance_name)
    return TimerList(
        timers=[
            TimerPublic(id=t.send_id, event=t.event, dueAt=iso(t.due_at), attempts=t.attempts)
            for t in rows
        ]
    )


@router.post(
    "/machines/{machineName}/bundle",
    response_model=BundleBuilt,
    responses=errors(
        (
            400,
            "the request is not valid, or the machine does not build or imports more than "
            "xstate (`invalid-bundle`, with esbuild's errors)",
        ),
        (404, "no such machine"),
        413,
        (501, "this server has no esbuild binary to bundle with"),
    ),
)
def build_bundle(
    machine_name: MachineName,
    body: BundleBuild,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.write"))],
) -> BundleBuilt:
    """Bundle a single-file machine (TypeScript or JavaScript importing xstate) as
    `smply machines create --node` does; upload the result as a version's code."""
    services.machines.get(principal.org_id, machine_name)  # 404 for a machine that is not there
    built = services.builder.build(body.source, body.fileName)
    return BundleBuilt(code=built.code, warnings=built.warnings)
