"""`/machines/{machineName}/migrations`: migrations between two versions, created in three
steps (provisionally create, upload the code, finalize), as versions are."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import MachineName, ServicesDep, requires
from api.openapi import errors
from api.schemas import MigrationCreate, MigrationFinalized, MigrationProvisional
from runtime.errors import InvalidRequestError

router = APIRouter(tags=["migrations"])

# The route whose bodies may be large (`api.app` gives it its own body limit).
MIGRATIONS_PATH = re.compile(r"/machines/[^/]+/migrations")


@router.post(
    "/machines/{machineName}/migrations",
    response_model=MigrationProvisional,
    responses=errors((404, "no such machine, or no such version of it"), 413),
    # Read from the raw bytes (below), so FastAPI would not document the body by itself.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": MigrationCreate.model_json_schema()}},
        }
    },
)
async def create_migration(
    machine_name: MachineName,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.write"))],
) -> MigrationProvisional:
    """Step 1 of 3: a provisional migration between two versions and where to upload its code
    (`?gzip` is accepted and ignored: uploads say themselves whether they are gzipped)."""
    raw = await request.body()
    base_url = services.settings.public_url or str(request.base_url)

    def provisional() -> MigrationProvisional:
        # Parsed from the bytes by pydantic-core: the code the client also sends (megabytes of
        # JSON) is skipped over, never built into Python objects.
        try:
            body = MigrationCreate.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            parameter = ".".join(str(part) for part in first["loc"]) or "body"
            raise InvalidRequestError(f"invalid {parameter}: {first['msg']}",
                                      parameter=parameter) from exc
        made = services.migrations.provisional(
            principal.org_id, machine_name, body.fromMachineVersionId, body.toMachineVersionId,
            base_url,
        )  # fmt: skip
        return MigrationProvisional(
            machineVersionMigrationId=made.signed_id,
            codeUploadUrl=made.upload_url,
            codeUploadFields=made.upload_fields,
        )

    return await run_in_threadpool(provisional)


@router.put(
    "/machines/{machineName}/migrations/{signedMigrationId}",
    response_model=MigrationFinalized,
    responses=errors((404, "no such machine, or no such provisional migration of it")),
)
def finalize_migration(
    machine_name: MachineName,
    signed_migration_id: Annotated[str, Path(alias="signedMigrationId")],
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("machine-versions.write"))],
) -> MigrationFinalized:
    """Step 3 of 3 (no body): load the uploaded code in the sandbox (it must export
    `upgradeState` and `upgradeContext` functions) and finalize the migration."""
    migration_id = services.migrations.finalize(
        principal.org_id, machine_name, signed_migration_id
    )
    return MigrationFinalized(machineVersionMigrationId=migration_id)
