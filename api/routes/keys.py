"""`/keys`: create (secret shown once), list, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api import views
from api.auth import Principal
from api.deps import ServicesDep, requires
from api.openapi import errors
from api.schemas import KeyCreate, KeyCreated, KeyList
from api.scopes import scopes_for

router = APIRouter(tags=["keys"])


@router.get("/keys", response_model=KeyList, response_model_exclude_none=True, responses=errors())
def list_keys(
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("tokens.admin", "org.keys.write"))],
    cursor: str | None = None,
) -> KeyList:
    """List the org's keys (never their secrets)."""
    rows, next_cursor = services.keys.list_page(principal, cursor)
    return KeyList(keys=[views.key_public(k) for k in rows], cursor=next_cursor)


@router.post("/keys", response_model=KeyCreated, responses=errors(413))
def create_key(
    body: KeyCreate,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.keys.write"))],
) -> KeyCreated:
    """Create a key; the response is the only time its secret is shown."""
    made = services.keys.create(principal, body.name, scopes_for(body.use, body.scopes))
    return KeyCreated(id=made.id, key=made.secret)


@router.delete(
    "/keys/{keyId}",
    status_code=204,
    response_class=Response,
    responses=errors((404, "no such key in this org")),
)
def delete_key(
    key_id: Annotated[str, Path(alias="keyId")],
    services: ServicesDep,
    principal: Annotated[Principal, Depends(requires("org.keys.write"))],
) -> Response:
    """Delete a key; tokens it signed stop working at once."""
    services.keys.delete(principal, key_id)
    return Response(status_code=204)
