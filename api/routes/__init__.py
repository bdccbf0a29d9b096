"""One router per resource; `api.app` mounts them all."""

from fastapi import APIRouter

from api.routes import (
    billing,
    extensions,
    instances,
    keys,
    machines,
    members,
    orgs,
    uploads,
    versions,
)

ROUTERS: list[APIRouter] = [
    machines.router,
    versions.router,
    uploads.router,
    instances.router,
    keys.router,
    orgs.router,
    billing.router,
    members.router,
    extensions.router,
]
