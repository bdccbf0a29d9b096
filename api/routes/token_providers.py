"""`/token-providers`: the services that mint backstate tokens from identity providers' ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api import ids
from api.auth import Principal
from api.deps import ServicesDep, requires
from api.openapi import MEANING, errors
from api.schemas import (
    SLUG_PATTERN,
    TokenProviderList,
    TokenProviderPublic,
    TokenProviderUpsert,
)

router = APIRouter(tags=["token providers"])
Admin = Annotated[Principal, Depends(requires("tokens.admin"))]


@router.get(
    "/token-providers",
    response_model=TokenProviderList,
    response_model_exclude_none=True,
    responses=errors(),
)
def list_token_providers(
    services: ServicesDep, principal: Admin, cursor: str | None = None
) -> TokenProviderList:
    """List the org's token providers."""
    rows, next_cursor = services.token_providers.list_page(principal, cursor)
    providers = [
        TokenProviderPublic(
            service=row.service, keyId=ids.encode("sbk", row.key_id), mapping=row.mapping
        )
        for row in rows
    ]
    return TokenProviderList(tokenProviders=providers, cursor=next_cursor)


@router.post(
    "/token-providers",
    status_code=204,
    response_class=Response,
    responses=errors(
        (400, "the request is not valid, e.g. `keyId` is not a key of this org"),
        (403, f"{MEANING[403]}, or the signing key holds a scope the caller lacks"),
        413,
    ),
)
def upsert_token_provider(
    body: TokenProviderUpsert, services: ServicesDep, principal: Admin
) -> Response:
    """Create or replace the token provider of this service."""
    services.token_providers.upsert(principal, body.service, body.keyId, body.mapping)
    return Response(status_code=204)


@router.delete(
    "/token-providers/{service}",
    status_code=204,
    response_class=Response,
    responses=errors((404, "no token provider for this service")),
)
def delete_token_provider(
    service: Annotated[str, Path(pattern=SLUG_PATTERN)],
    services: ServicesDep,
    principal: Admin,
) -> Response:
    """Delete the token provider of this service (tokens it minted work until they expire)."""
    services.token_providers.delete(principal, service)
    return Response(status_code=204)
