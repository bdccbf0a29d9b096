"""`/logs`: machines' console output and the runtime's lines about them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.auth import Principal
from api.deps import ServicesDep, requires
from api.openapi import errors
from api.schemas import LogsPage
from api.services.logs import LogQuery

router = APIRouter(tags=["logs"])


# 400: a time that is not ISO 8601, a version that is no version id, a name that is no slug.
# An unknown machine, instance or version is no error: nothing matches.
@router.get("/logs", responses=errors(ok=LogsPage))
def get_logs(
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("logs.read"))],
    from_: Annotated[str, Query(alias="from")],
    to: str | None = None,
    machine: str | None = None,
    instance: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Up to 100 log entries from `from` on, oldest first, and the `maxTimestamp` to continue
    from (`from` itself when there is nothing new yet)."""
    return services.logs.page(principal, LogQuery(from_, to, machine, instance, version))
