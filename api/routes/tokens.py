"""`POST /tokens`: token exchange (RFC 8693), with no bearer token: see `api/identity/`."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request

from api.deps import ServicesDep
from api.identity.exchange import ACCESS_TOKEN_TYPE, FORM, GRANT_TYPE, parse_request
from api.openapi import errors
from api.schemas import TokenExchanged

router = APIRouter(tags=["tokens"])

_FORM_SCHEMA = {
    "type": "object",
    "required": ["grant_type", "audience", "subject_token"],
    "properties": {
        "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
        "audience": {
            "type": "string",
            "description": "https://tokens.statebacked.dev/<orgId>/<token provider service>",
        },
        "requested_token_type": {"type": "string", "enum": [ACCESS_TOKEN_TYPE]},
        "subject_token": {"type": "string", "description": "the identity provider's JWT"},
    },
}


@router.post(
    "/tokens",
    response_model=TokenExchanged,
    responses=errors(
        (400, "the body is not the exchange's form (`parameter` names what is wrong)"),
        (
            403,
            "the subject token is refused: no such token provider or identity provider, an "
            "invalid or expired token, a mapping that yields no claims, anonymous access off, "
            "or the signing key gone (`code` says which)",
        ),
        413,
        authenticated=False,
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {FORM: {"schema": _FORM_SCHEMA}}},
        "security": [],  # its 403s are about the subject token: no bearer token is read
    },
)
async def exchange_token(request: Request, services: ServicesDep) -> TokenExchanged:
    """Exchange an identity provider's token (or an anonymous session's) for a backstate
    access token, through the token provider the audience names."""
    exchange = parse_request(
        await request.body(),
        request.headers.get("content-type"),
        limit=services.settings.max_token_request_bytes,
    )
    minted = await anyio.to_thread.run_sync(services.tokens.exchange, exchange)
    return TokenExchanged(
        access_token=minted.access_token,
        issued_token_type=ACCESS_TOKEN_TYPE,
        token_type="Bearer",
        expires_in=minted.expires_in,
    )
