"""Org members and invitations: not supported (this server has keys, not user accounts).

Both answer 501 with the usual JSON error body, after authenticating the caller, so smply's
`invitations send|accept` fail with a message that says what to do instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from api.auth import Principal
from api.deps import authenticate, requires
from api.errors import error_response
from api.openapi import errors

router = APIRouter(tags=["org members"])

_UNSUPPORTED = (
    "this server has no user accounts, so no members or invitations; "
    "give people API keys instead (POST /keys, or `backstate keys create`)"
)
_NOT_SUPPORTED = errors((501, "always: " + _UNSUPPORTED))


@router.post("/org-members", status_code=501, responses=_NOT_SUPPORTED)
def invite_member(
    _principal: Annotated[Principal, Depends(requires("org-members.write"))],
) -> JSONResponse:
    """Invite a member: not supported (501)."""
    return error_response(501, _UNSUPPORTED, "not-implemented")


def accept_invitation(
    _code: Annotated[str, Path(alias="invitationCode")],
    _principal: Annotated[Principal, Depends(authenticate)],
) -> JSONResponse:
    """Accept an invitation: not supported (501)."""
    return error_response(501, _UNSUPPORTED, "not-implemented")


class _Leftover(APIRoute):
    """A route for the one-segment paths no other route claims, and only for its own method.

    State Backed accepts invitations at `PUT /{invitationCode}`, a pattern that every
    one-segment path fits: as a plain route it would answer 405 to `GET /logs` (a path this
    server does not serve, which must be 404) and 501 to `PUT /machines` (a path it serves
    with other methods, which must be 405). `siblings` are the app's routes, read on each
    match, so routes added later win too."""

    siblings: Sequence[BaseRoute] = ()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.FULL or self._claimed(scope):
            return Match.NONE, {}
        return match, child

    def _claimed(self, scope: Scope) -> bool:
        others = (route for route in self.siblings if route is not self)
        return any(route.matches(dict(scope))[0] is not Match.NONE for route in others)


def add_invitations(app: FastAPI) -> None:
    """Add `PUT /{invitationCode}` to the app itself (a route of an included router is
    matched by FastAPI, not by `_Leftover.matches`)."""
    app.router.add_api_route(
        "/{invitationCode}",
        accept_invitation,
        methods=["PUT"],
        status_code=501,
        tags=["org members"],
        responses=_NOT_SUPPORTED,
        route_class_override=_Leftover,
    )
    route: Any = app.router.routes[-1]
    assert isinstance(route, _Leftover)
    route.siblings = app.router.routes
