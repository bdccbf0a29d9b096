"""`/orgs`: the orgs the caller can act in, creating orgs; `/anonymous-access`: the org's
built-in anonymous service (a backstate extension: State Backed only sets it at creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api import ids
from api.auth import Principal
from api.deps import ServicesDep, requires
from api.openapi import errors
from api.schemas import (
    AnonymousAccess,
    OrgCreate,
    OrgCreated,
    OrgLimits,
    OrgList,
    OrgPublic,
    iso,
)

router = APIRouter(tags=["orgs"])

# A self-hosted server meters nothing; these only satisfy clients that display them.
UNLIMITED = OrgLimits(monthlyEventsLimit=2**53 - 1, monthlyReadsLimit=2**53 - 1)


@router.get("/orgs", response_model=OrgList, response_model_exclude_none=True, responses=errors())
def list_orgs(
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.read"))],
    cursor: str | None = None,
) -> OrgList:
    """The orgs the caller can act in: its key's own, and those it created."""
    rows = services.orgs.list_page(principal)
    return OrgList(
        orgs=[
            OrgPublic(
                id=ids.encode("org", org.id),
                name=org.name,
                role=role,
                createdAt=iso(org.created_at),
                limits=UNLIMITED,
                allowAnonymousAccess=org.allow_anonymous,
            )
            for org, role in rows
        ]
    )


@router.post("/orgs", response_model=OrgCreated, responses=errors(413))
def create_org(
    body: OrgCreate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.keys.write"))],
) -> OrgCreated:
    """Create an org (admin keys only). The caller's key may act in it from then on, with its
    own scopes, by naming it in `x-statebacked-org-id` (smply: `-o <org>`): to make its keys,
    for one. Anonymous access is on unless `allowAnonymousAccess` is false."""
    org_id = services.orgs.create(principal, body.name, allow_anonymous=body.allowAnonymousAccess)
    return OrgCreated(id=org_id)


@router.get("/anonymous-access", response_model=AnonymousAccess, responses=errors())
def get_anonymous_access(
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.read"))],
) -> AnonymousAccess:
    """Whether the org's built-in anonymous service (`anonymous-statebacked-dev`) mints tokens."""
    return AnonymousAccess(allowAnonymousAccess=services.orgs.anonymous_access(principal))


@router.put("/anonymous-access", status_code=204, response_class=Response, responses=errors(413))
def set_anonymous_access(
    body: AnonymousAccess,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.write"))],
) -> Response:
    """Switch the org's anonymous service on or off. Off also deletes the key it signs with,
    so the anonymous tokens it minted stop working."""
    services.orgs.set_anonymous_access(principal, body.allowAnonymousAccess)
    return Response(status_code=204)
