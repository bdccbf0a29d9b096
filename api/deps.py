"""FastAPI dependencies: the services, and the authenticated caller with a scope check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request

from api.auth import Credentials, Principal
from api.schemas import SLUG_PATTERN
from api.scopes import Scope
from api.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def authenticate(request: Request, services: ServicesDep) -> Principal:
    """The caller (blocking: runs on the thread pool)."""
    headers = request.headers
    return services.auth.authenticate(
        Credentials(
            authorization=headers.get("authorization"),
            org_id=headers.get("x-statebacked-org-id"),
            act=headers.get("x-statebacked-act"),
        )
    )


def requires(*any_of: Scope) -> Callable[[Principal], Principal]:
    """A dependency yielding the caller, who must hold at least one of `any_of`."""

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        principal.require(*any_of)
        return principal

    return check


MachineName = Annotated[str, Path(alias="machineName", pattern=SLUG_PATTERN)]
InstanceName = Annotated[str, Path(alias="instanceName", pattern=SLUG_PATTERN)]
