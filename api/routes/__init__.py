"""One router per resource; `api.app` mounts them all."""

from fastapi import APIRouter

from api.routes import (
    billing,
    extensions,
    idps,
    instances,
    keys,
    machines,
    members,
    orgs,
    token_providers,
    tokens,
    uploads,
    versions,
)

# `members` stays last: its `PUT /{invitationCode}` matches any one-segment path.
ROUTERS: list[APIRouter] = [
    machines.router,
    versions.router,
    uploads.router,
    instances.router,
    keys.router,
    orgs.router,
    billing.router,
    tokens.router,
    idps.router,
    token_providers.router,
    extensions.router,
    members.router,
]
