"""The hot routes without FastAPI's per-request machinery: `POST /machines/{m}/i/{i}/events`
(an event) and `POST /machines/{m}` (a creation).

FastAPI's routing, dependency resolution and response serialization, and the eight middleware
layers around them (each wrapping `send`), cost as much CPU as the rest of the event loop's
share of an event (bench/FIGURES.md), all under the GIL the steps need too. This pure ASGI app
sits outside that whole stack (`api.app` puts it there) and answers the plain case of these
routes directly; every other request, and any request it cannot answer exactly as the stack
would, goes on to the stack unchanged, body included: names that do not match the slug pattern,
a body that is not a valid `EventSend` (`InstanceCreate`) or is over the body limit, a key not
cached yet, a missing scope, and any request with an `Origin` header (browsers: CORS is the
stack's). The FastAPI routes stay the documented ones (OpenAPI) and the reference: both paths
call the same `InstanceService` method and answer its errors through `api.errors`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth import Credentials, Principal
from api.middleware import replay
from api.schemas import SLUG_PATTERN, EventSend, InstanceCreate
from api.scopes import SEND_EVENT_SCOPES
from api.scopes import Scope as KeyScope
from api.services import Services
from runtime.errors import BackstateError

_SLUG = SLUG_PATTERN.strip("^$")
_EVENTS = re.compile(f"/machines/({_SLUG})/i/({_SLUG})/events")
_CREATE = re.compile(f"/machines/({_SLUG})")
CREATE_SCOPES: tuple[KeyScope, ...] = ("instances.write",)   # as the route's `requires` says
log = logging.getLogger("backstate.api")
# A request this path answers: the call to the service, if the request is the plain case.
Answer = Callable[[], Awaitable[dict[str, Any]]]


class FastPath:
    def __init__(self, app: ASGIApp, services: Callable[[], Services], body_limit: int):
        self.app = app
        self._services = services
        self._body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False) or len(body) > self._body_limit:
            await self.app(scope, replay(message, receive), send)
            return
        answer = route(self._services(), scope, body)
        if answer is None:
            await self.app(scope, replay(message, receive), send)
            return
        try:
            state = await answer()
        except BackstateError as exc:
            response = errors.backstate_error_response(exc)
        except Exception:  # as `api.middleware.CatchAll` answers it on the stack
            log.exception("unexpected error in POST %s", scope["path"])
            response = errors.error_response(500, "internal server error", "internal-error")
        else:
            response = JSONResponse(state)
        await response(scope, receive, send)


Route = Callable[[Services, Scope, bytes], Answer | None]


def _route(scope: Scope) -> Route | None:
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path = scope["path"]
    if (names := _EVENTS.fullmatch(path)) is not None:
        return functools.partial(_send, names[1], names[2])
    if (names := _CREATE.fullmatch(path)) is not None:
        return functools.partial(_create, names[1])
    return None


def _send(machine: str, instance: str, services: Services, scope: Scope,
          body: bytes) -> Answer | None:
    principal = _caller(services, scope, SEND_EVENT_SCOPES)
    if principal is None:
        return None
    try:
        event = EventSend.model_validate_json(body).event
    except (ValidationError, UnicodeDecodeError):
        return None
    assert isinstance(event, dict)  # normalized by EventSend
    return functools.partial(services.instances.send, principal, machine, instance, event)


def _create(machine: str, services: Services, scope: Scope, body: bytes) -> Answer | None:
    principal = _caller(services, scope, CREATE_SCOPES)
    if principal is None:
        return None
    try:
        new = InstanceCreate.model_validate_json(body)
    except (ValidationError, UnicodeDecodeError):
        return None
    return functools.partial(services.instances.create, principal, machine, new.slug,
                             new.context, new.machineVersionId)


def _caller(services: Services, scope: Scope, scopes: tuple[KeyScope, ...]) -> Principal | None:
    """The caller, if the request is the plain case for a route needing one of `scopes`."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)  # the first of repeated headers, as Starlette reads
    if b"origin" in headers:
        return None  # a browser's request: the stack adds the CORS headers
    if not headers.get(b"content-type", b"").startswith(b"application/json"):
        return None
    try:
        creds = Credentials(
            authorization=_text(headers.get(b"authorization")),
            org_id=_text(headers.get(b"x-statebacked-org-id")),
            act=_text(headers.get(b"x-statebacked-act")),
        )
        principal = services.auth.authenticate_cached(creds)
    except BackstateError:
        return None
    if principal is None or not principal.scopes.intersection(scopes):
        return None
    return principal


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
