"""FastAPI dependencies: the services, and the authenticated caller with a scope check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Path, Request

from api.auth import Credentials, Principal
from api.schemas import SLUG_PATTERN
from api.scopes import Scope
from api.services import Services

# Dependencies are `async def` so that FastAPI runs them on the event loop: it would run a plain
# `def` on the thread pool, a thread hop per dependency per request.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def authenticate(request: Request, services: ServicesDep) -> Principal:
    """The caller: verified on the loop when its key is cached, else on a worker thread."""
    headers = request.headers
    creds = Credentials(
        authorization=headers.get("authorization"),
        org_id=headers.get("x-statebacked-org-id"),
        act=headers.get("x-statebacked-act"),
    )
    principal = services.auth.authenticate_cached(creds)
    if principal is None:
        principal = await anyio.to_thread.run_sync(services.auth.authenticate, creds)
    return principal


def requires(*any_of: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency yielding the caller, who must hold at least one of `any_of`."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        principal.require(*any_of)
        return principal

    return check


MachineName = Annotated[str, Path(alias="machineName", pattern=SLUG_PATTERN)]
InstanceName = Annotated[str, Path(alias="instanceName", pattern=SLUG_PATTERN)]
