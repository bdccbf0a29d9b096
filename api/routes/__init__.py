"""One router per resource; `api.app` mounts them all."""

from fastapi import APIRouter

from api.routes import (
    billing,
    extensions,
    idps,
    instances,
    keys,
    logs,
    machines,
    members,
    migrations,
    orgs,
    realtime,
    token_providers,
    tokens,
    uploads,
    versions,
)

ROUTERS: list[APIRouter] = [
    machines.router,
    versions.router,
    migrations.router,
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
    logs.router,
    realtime.router,
]
