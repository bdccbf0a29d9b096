"""`POST /machines/{m}/i/{i}/events` without FastAPI's per-request machinery: the hot route.

FastAPI's routing, dependency resolution and response serialization, and the eight middleware
layers around them (each wrapping `send`), cost as much CPU as the rest of the event loop's
share of an event (bench/FIGURES.md), all under the GIL the steps need too. This pure ASGI app
sits outside that whole stack (`api.app` puts it there) and answers the plain case of the event
route directly; every other request, and any event request it cannot answer exactly as the stack
would, goes on to the stack unchanged, body included: names that do not match the slug pattern,
a body that is not a valid `EventSend` or is over the body limit, a key not cached yet, a
missing scope, and any request with an `Origin` header (browsers: CORS is the stack's). The
FastAPI route stays the documented one (OpenAPI) and the reference: both call
`InstanceService.send` and answer its errors through `api.errors`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth import Credentials, Principal
from api.middleware import replay
from api.schemas import SLUG_PATTERN, EventSend
from api.scopes import SEND_EVENT_SCOPES
from api.services import Services
from runtime.errors import BackstateError

_SLUG = SLUG_PATTERN.strip("^$")
_EVENTS = re.compile(f"/machines/({_SLUG})/i/({_SLUG})/events")
log = logging.getLogger("backstate.api")


class EventFastPath:
    def __init__(self, app: ASGIApp, services: Callable[[], Services], body_limit: int):
        self.app = app
        self._services = services
        self._body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        names = _EVENTS.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if names is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False) or len(body) > self._body_limit:
            await self.app(scope, replay(message, receive), send)
            return
        services = self._services()
        principal, event = _accepted(services, scope, body)
        if principal is None or event is None:
            await self.app(scope, replay(message, receive), send)
            return
        try:
            state = await services.instances.send(principal, names[1], names[2], event)
        except BackstateError as exc:
            response = errors.backstate_error_response(exc)
        except Exception:  # as `api.middleware.CatchAll` answers it on the stack
            log.exception("unexpected error in POST %s", scope["path"])
            response = errors.error_response(500, "internal server error", "internal-error")
        else:
            response = JSONResponse(state)
        await response(scope, receive, send)


def _accepted(
    services: Services, scope: Scope, body: bytes
) -> tuple[Principal | None, dict[str, object] | None]:
    """The caller and the event, if this request is the plain case; (None, None) otherwise."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)  # the first of repeated headers, as Starlette reads
    if b"origin" in headers:
        return None, None  # a browser's request: the stack adds the CORS headers
    if not headers.get(b"content-type", b"").startswith(b"application/json"):
        return None, None
    try:
        creds = Credentials(
            authorization=_text(headers.get(b"authorization")),
            org_id=_text(headers.get(b"x-statebacked-org-id")),
            act=_text(headers.get(b"x-statebacked-act")),
        )
        principal = services.auth.authenticate_cached(creds)
        if principal is None or not principal.scopes.intersection(SEND_EVENT_SCOPES):
            return None, None
        event = EventSend.model_validate_json(body).event
    except (BackstateError, ValidationError, UnicodeDecodeError):
        return None, None
    assert isinstance(event, dict)  # normalized by EventSend
    return principal, event


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
