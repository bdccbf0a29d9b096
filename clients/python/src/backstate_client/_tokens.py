"""How a client obtains the token it sends.

A client's token comes from its token config, as `TokenConfig` in `@statebacked/client`: a
string, a function returning one, an identity provider's token exchanged at `POST /tokens`
(`IdentityProviderToken`), or an anonymous session (`AnonymousSession`: a subject token the
client signs with the org id, exchanged with the built-in `anonymous-statebacked-dev` service).
`obtain_token` is that logic as one flow; the clients cache its result until shortly before the
token's `exp`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from backstate_client._errors import UnauthorizedError
from backstate_client._flow import Flow, Request, Resolve, call
from backstate_client._signing import anonymous_subject_token

ANONYMOUS_SERVICE = "anonymous-statebacked-dev"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# A cached token is replaced this long before its `exp`, so that it does not expire on its way.
REFRESH_MARGIN_S = 5.0

# A getter may return an awaitable in the async client; the sync client refuses one.
Getter: TypeAlias = Callable[[], "str | Awaitable[str]"]


@dataclass(frozen=True)
class IdentityProviderToken:
    """Exchange a token of your identity provider (Auth0, Supabase, any OIDC issuer) for a
    State Backed token, through the token provider `token_provider_service` of `org_id`."""

    identity_provider_token: str | Getter
    org_id: str
    token_provider_service: str


@dataclass(frozen=True)
class AnonymousSession:
    """An anonymous session of `org_id`: machines see `{"sid", "did", "auth": "anonymous"}`.
    Without `session_id`, one random session id per process is used (as the official client
    does per page); `device_id` defaults to the session id."""

    org_id: str
    session_id: str | Getter | None = None
    device_id: str | Getter | None = None


TokenConfig: TypeAlias = str | Getter | IdentityProviderToken | AnonymousSession

def token_expiry(token: str) -> float | None:
    """The `exp` of a JWT (epoch seconds), read without verifying it; None if it has none."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


@dataclass
class CachedToken:
    """The token a client last obtained, reused until `REFRESH_MARGIN_S` before its `exp`
    (a token without `exp` is kept for good, as the official client keeps it)."""

    token: str | None = None
    expires_at: float | None = None

    def current(self, now: float) -> str | None:
        if self.token is None:
            return None
        if self.expires_at is not None and now >= self.expires_at - REFRESH_MARGIN_S:
            return None
        return self.token

    def store(self, token: str) -> None:
        self.token = token
        self.expires_at = token_expiry(token)


# The anonymous session of this process when none is given (the official client has one per
# page).
PROCESS_SESSION = str(uuid.uuid4())


def exchange_request(org_id: str, service: str, subject_token: str) -> Request:
    """`POST /tokens`, RFC 8693, as the official client sends it (no bearer token)."""
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "audience": f"https://tokens.statebacked.dev/{org_id}/{service}",
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "subject_token": subject_token,
    }
    return Request("POST", "/tokens", form=form, auth="headers")


def exchange(org_id: str, service: str, subject_token: str) -> Flow[str]:
    body = yield from call(exchange_request(org_id, service, subject_token))
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise UnauthorizedError("the token exchange answered without an access_token")
    return token


def obtain_token(config: TokenConfig) -> Flow[str]:
    """A fresh token from a token config."""
    if isinstance(config, str):
        return config
    if isinstance(config, IdentityProviderToken):
        subject = yield from _resolve(config.identity_provider_token)
        return (yield from exchange(config.org_id, config.token_provider_service, subject))
    if isinstance(config, AnonymousSession):
        session = yield from _resolve(config.session_id or PROCESS_SESSION)
        device = yield from _resolve(config.device_id or session)
        subject = anonymous_subject_token(config.org_id, session, device)
        return (yield from exchange(config.org_id, ANONYMOUS_SERVICE, subject))
    return (yield from _resolve(config))


def _resolve(value: str | Getter) -> Flow[str]:
    if isinstance(value, str):
        return value
    try:
        resolved = yield Resolve(value)
    except Exception as exc:  # whatever the user's function raised
        raise UnauthorizedError("failed to retrieve token") from exc
    if not isinstance(resolved, str):
        raise UnauthorizedError(f"the token function returned {type(resolved).__name__}, not str")
    return resolved
