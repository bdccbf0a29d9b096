"""One router per resource; `api.app` mounts them all."""

from fastapi import APIRouter

from api.routes import (
    billing,
    instances,
    keys,
    machines,
    members,
    migrations,
    orgs,
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
    members.router,
]
