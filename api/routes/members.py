"""Org members and invitations: not supported (this server has keys, not user accounts).

Both answer 501 with the usual JSON error body, after authenticating the caller, so smply's
`invitations send|accept` fail with a message that says what to do instead."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from api.auth import Principal
from api.deps import authenticate, requires
from api.errors import error_response

router = APIRouter(tags=["org members"])

_UNSUPPORTED = (
    "this server has no user accounts, so no members or invitations; "
    "give people API keys instead (POST /keys, or `backstate keys create`)"
)


@router.post("/org-members")
def invite_member(
    _principal: Annotated[Principal, Depends(requires("org-members.write"))],
) -> JSONResponse:
    """Invite a member: not supported (501)."""
    return error_response(501, _UNSUPPORTED, "not-implemented")


@router.put("/{invitationCode}")
def accept_invitation(
    _code: Annotated[str, Path(alias="invitationCode")],
    _principal: Annotated[Principal, Depends(authenticate)],
) -> JSONResponse:
    """Accept an invitation: not supported (501)."""
    return error_response(501, _UNSUPPORTED, "not-implemented")
