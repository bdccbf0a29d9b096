"""The one place errors become HTTP responses: `{error, code, parameter}` JSON, always.

runtime.errors class            status   code (default)
NotFoundError                   404      not-found
ConflictError                   409      invalid-state / already-exists / instance-busy /
                                         upgrade-failed (a pending upgrade's migration failed)
PayloadTooLargeError            413      payload-too-large
InvalidRequestError             400      invalid-parameter / no-migration-path
UnsupportedError                501      not-implemented  (a feature this server lacks)
UnavailableError                503      database-unavailable (try again, or another node)
AuthError, MissingScopeError    403      unauthorized / missing-org / missing-scope
RejectedByAuthorizerError       403      rejected-by-machine-authorizer
BundleError                     400      invalid-bundle
MachineError (and subclasses)   400      their own code
request validation (FastAPI)    400      invalid-parameter, naming the parameter
anything else                   500      internal-error (details only in the server log)

Every error response is counted here, by status and code (`backstate_errors_total`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from runtime.errors import (
    AuthError,
    BackstateError,
    BundleError,
    ConflictError,
    InvalidRequestError,
    MachineError,
    NotFoundError,
    PayloadTooLargeError,
    RejectedByAuthorizerError,
    UnavailableError,
    UnsupportedError,
)
from runtime.metrics import error_answered

log = logging.getLogger("backstate.api")

PAYLOAD_TOO_LARGE = PayloadTooLargeError.code

_STATUS: list[tuple[type[BackstateError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (UnsupportedError, 501),
    (UnavailableError, 503),
    (InvalidRequestError, 400),
    (AuthError, 403),
    (RejectedByAuthorizerError, 403),
    (BundleError, 400),
    (MachineError, 400),
]
_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 413: PAYLOAD_TOO_LARGE}
_LOCATIONS = {"body", "path", "query", "header"}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def error_response(
    status: int, message: str, code: str, parameter: str | None = None
) -> JSONResponse:
    error_answered(status, code)
    body: dict[str, Any] = {"error": message, "code": code}
    if parameter is not None:
        body["parameter"] = parameter
    return JSONResponse(body, status_code=status)


def status_of(exc: BackstateError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def install(app: FastAPI) -> None:
    app.add_exception_handler(BackstateError, _on_backstate_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _on_http_exception)  # type: ignore[arg-type]
    # Anything else is answered by `api.middleware.CatchAll`.


def backstate_error_response(exc: BackstateError) -> JSONResponse:
    status = status_of(exc)
    if status == 500:
        log.error("unmapped error", exc_info=exc)
        return error_response(500, "internal server error", "internal-error")
    return error_response(status, exc.message, exc.code, exc.parameter)


async def _on_backstate_error(_request: Request, exc: BackstateError) -> JSONResponse:
    return backstate_error_response(exc)


async def _on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in _LOCATIONS]
    if first.get("type") == "json_invalid":
        location = []
    parameter = ".".join(location) or "body"
    message = f"invalid {parameter}: {first.get('msg', 'invalid request')}"
    return error_response(400, message, "invalid-parameter", parameter)


async def _on_http_exception(request: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http-error")
    response = error_response(exc.status_code, str(exc.detail), code)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: Starlette's `Allow` names only the first
    route that matched the path (`GET /machines`, not `POST /machines` too)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes)
    ]  # fmt: skip
