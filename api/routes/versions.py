"""`/machines/{machineName}/v`: list, provisionally create, finalize."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from api import views
from api.auth import Principal
from api.deps import MachineName, ServicesDep, requires
from api.openapi import errors
from api.schemas import VersionFinalize, VersionFinalized, VersionList, VersionProvisional

router = APIRouter(tags=["machine versions"])

NO_MACHINE = (404, "no such machine")


@router.get(
    "/machines/{machineName}/v",
    response_model=VersionList,
    response_model_exclude_none=True,
    responses=errors(NO_MACHINE),
)
def list_versions(
    machine_name: MachineName,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.read"))],
    cursor: str | None = None,
) -> VersionList:
    """List a machine's finalized versions, oldest first."""
    rows, next_cursor = services.versions.list_page(principal.org_id, machine_name, cursor)
    return VersionList(versions=[views.version_info(v) for v in rows], cursor=next_cursor)


@router.post(
    "/machines/{machineName}/v", response_model=VersionProvisional, responses=errors(NO_MACHINE)
)
def create_version(
    machine_name: MachineName,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.write"))],
) -> VersionProvisional:
    """Step 1 of 3: a provisional version and where to upload its code (`?gzip` is accepted
    and ignored: uploads say themselves whether they are gzipped)."""
    base_url = services.settings.public_url or str(request.base_url)
    made = services.versions.provisional(principal.org_id, machine_name, base_url)
    return VersionProvisional(
        machineVersionId=made.signed_id,
        codeUploadUrl=made.upload_url,
        codeUploadFields=made.upload_fields,
    )


@router.put(
    "/machines/{machineName}/v/{signedVersionId}",
    response_model=VersionFinalized,
    responses=errors((404, "no such machine, or no such provisional version of it"), 413),
)
def finalize_version(
    machine_name: MachineName,
    signed_version_id: Annotated[str, Path(alias="signedVersionId")],
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.write"))],
    body: VersionFinalize | None = None,
) -> VersionFinalized:
    """Step 3 of 3: validate the uploaded code and finalize the version."""
    body = body or VersionFinalize()
    version_id = services.versions.finalize(
        principal.org_id,
        machine_name,
        signed_version_id,
        client_info=body.clientInfo,
        make_current=body.makeCurrent,
    )
    return VersionFinalized(machineVersionId=version_id)
