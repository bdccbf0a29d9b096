"""`/idps`: the identity providers whose tokens the org's token providers accept."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.auth import Principal
from api.deps import ServicesDep, requires
from api.identity.providers import IdpInput
from api.openapi import errors
from api.schemas import IdpDelete, IdpList, IdpPublic, IdpUpsert

router = APIRouter(tags=["identity providers"])
Admin = Annotated[Principal, Depends(requires("tokens.admin"))]


@router.get("/idps", response_model=IdpList, response_model_exclude_none=True, responses=errors())
def list_idps(services: ServicesDep, principal: Admin, cursor: str | None = None) -> IdpList:
    """List the org's identity providers (never their shared keys)."""
    rows, next_cursor = services.idps.list_page(principal, cursor)
    idps = [
        IdpPublic(
            aud=row.aud or None,
            iss=row.iss or None,
            algs=row.algs,
            jwksUrl=row.jwks_url,
            mapping=row.mapping,
        )
        for row in rows
    ]
    return IdpList(idps=idps, cursor=next_cursor)


@router.post("/idps", status_code=204, response_class=Response, responses=errors(413))
def upsert_idp(body: IdpUpsert, services: ServicesDep, principal: Admin) -> Response:
    """Create or replace the identity provider with this `aud` and `iss`."""
    given = IdpInput(body.aud, body.iss, list(body.algs), body.key, body.jwksUrl, body.mapping)
    services.idps.upsert(principal, given)
    return Response(status_code=204)


@router.delete(
    "/idps",
    status_code=204,
    response_class=Response,
    responses=errors((404, "no identity provider with this `aud` and `iss`"), 413),
)
def delete_idp(body: IdpDelete, services: ServicesDep, principal: Admin) -> Response:
    """Delete the identity provider with this `aud` and `iss`."""
    services.idps.delete(principal, body.aud, body.iss)
    return Response(status_code=204)
