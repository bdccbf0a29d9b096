"""`/orgs`: the caller's org, and creating orgs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api import ids
from api.auth import Principal
from api.deps import ServicesDep, requires
from api.openapi import errors
from api.schemas import OrgCreate, OrgCreated, OrgLimits, OrgList, OrgPublic, iso

router = APIRouter(tags=["orgs"])

# A self-hosted server meters nothing; these only satisfy clients that display them.
UNLIMITED = OrgLimits(monthlyEventsLimit=2**53 - 1, monthlyReadsLimit=2**53 - 1)


@router.get("/orgs", response_model=OrgList, response_model_exclude_none=True, responses=errors())
def list_orgs(
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.read"))],
    cursor: str | None = None,
) -> OrgList:
    """The orgs the caller can act in: a key belongs to exactly one."""
    rows = services.orgs.list_page(principal)
    return OrgList(
        orgs=[
            OrgPublic(
                id=ids.encode("org", org.id),
                name=org.name,
                role=role,
                createdAt=iso(org.created_at),
                limits=UNLIMITED,
            )
            for org, role in rows
        ]
    )


@router.post("/orgs", response_model=OrgCreated, responses=errors(413))
def create_org(
    body: OrgCreate,
    services: ServicesDep,
    _principal: Annotated[Principal, Depends(requires("org.keys.write"))],
) -> OrgCreated:
    """Create an org (admin keys only). Keys are per org: make its first key with
    `backstate keys create --org <id>`."""
    return OrgCreated(id=services.orgs.create(body.name))
