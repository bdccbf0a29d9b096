"""The OpenAPI document (`/openapi.json`, `/docs`): every status an operation can answer.

Routes declare their error statuses with `errors(...)`; `install` makes the document say what
the server does instead of FastAPI's defaults: a request that fails validation is answered 400
in the JSON error shape by `api/errors.py`, never 422 with FastAPI's own body.

    @router.get("/machines/{machineName}", responses=errors(404))
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.schemas import ErrorBody

Responses = dict[int | str, dict[str, Any]]

# The usual meaning of each status; a route may say more precisely what it means there.
MEANING = {
    400: "the request is not valid (`parameter` names what is wrong)",
    403: "no valid token, the key lacks the scope (`missing-scope`) or belongs to another org "
    "(`missing-org`), or the machine's authorizer refused (`rejected-by-machine-authorizer`)",
    404: "not found",
    409: "conflicts with the current state",
    413: "the request body is over the server's limit (`payload-too-large`)",
    501: "not supported by this server",
}

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "a JWT signed with an API key (`backstate token`, or `@statebacked/token`)",
}

# What FastAPI adds for its own validation errors, which this server never answers.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def errors(
    *statuses: int | tuple[int, str],
    authenticated: bool = True,
    ok: type[BaseModel] | None = None,
) -> Responses:
    """The `responses=` of a route that can answer `statuses` (each a status, or a status and
    what it means there) besides its success, always 400, and 403 if it needs a token. `ok`
    describes the 200 body of a route that answers a plain dict (documented only: FastAPI then
    neither validates nor filters what the route returns)."""
    implied: list[int | tuple[int, str]] = [400, 403] if authenticated else [400]
    declared: Responses = {} if ok is None else {200: {"model": ok}}
    for item in [*implied, *statuses]:
        status, meaning = item if isinstance(item, tuple) else (item, MEANING[item])
        declared[status] = {"model": ErrorBody, "description": meaning}
    return declared


def install(app: FastAPI) -> None:
    """Serve the document as the server behaves: without FastAPI's 422 responses and their
    schemas, and with the bearer token that every operation answering 403 needs."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            app.openapi_schema = _with_bearer(_without_422(schema))
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for ops in schema.get("paths", {}).values() for op in ops.values()]


def _without_422(schema: dict[str, Any]) -> dict[str, Any]:
    for operation in _operations(schema):
        operation.get("responses", {}).pop("422", None)
    definitions = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION:
        definitions.pop(name, None)
    return schema


def _with_bearer(schema: dict[str, Any]) -> dict[str, Any]:
    """The token is read by `api.deps.authenticate` (a plain dependency, so that no security
    class runs per request); `errors(authenticated=True)` is what marks the operations. An
    operation that answers 403 about something else says `security: []` itself (`POST /tokens`,
    whose token is in its form)."""
    schema.setdefault("components", {})["securitySchemes"] = {"bearer": BEARER}
    for operation in _operations(schema):
        if "403" in operation.get("responses", {}):
            operation.setdefault("security", [{"bearer": []}])
    return schema
