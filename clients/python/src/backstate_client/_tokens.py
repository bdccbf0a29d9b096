"""Tokens: signing them as `@statebacked/token` does, and obtaining the one a client sends.

`sign_token` makes the same JWT as `signToken` of `@statebacked/token` 0.2.0 (jose): header
`{"alg":"HS256","kid":<key id>}` (no `typ`), claims `act`, `aud`, `exp`, `iss`, `iat` in that
order, HMAC-SHA256 keyed by the UTF-8 bytes of the `sbsec_...` secret. For the same instant and
ASCII claims the two produce byte-identical tokens.

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
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import jwt
from jwt.algorithms import HMACAlgorithm

from backstate_client._errors import UnauthorizedError
from backstate_client._flow import Flow, Request, Resolve, call

STATEBACKED_AUDIENCE = "https://api.statebacked.dev/"
ANONYMOUS_SERVICE = "anonymous-statebacked-dev"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ANONYMOUS_LIFETIME_S = 86400
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

# --- signing -----------------------------------------------------------------------------

_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "y": 31557600, "yr": 31557600, "yrs": 31557600, "year": 31557600, "years": 31557600,
}  # fmt: skip
_SPAN = re.compile(r"^(\d+|\d+\.\d+) ?([a-z]+)$", re.IGNORECASE)


def parse_time_span(text: str) -> int:
    """Seconds in a span as jose (and so `@statebacked/token`) reads `expires.in`: "30m",
    "7d", "1.5 hours", "2 weeks"; a year is 365.25 days; rounded half up."""
    match = _SPAN.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNIT_SECONDS:
        raise ValueError(f"invalid time span {text!r} (try '30m', '1h', '7d')")
    return math.floor(float(match.group(1)) * _UNIT_SECONDS[unit] + 0.5)


def sign_token(
    key_id: str,
    secret: str,
    claims: Mapping[str, Any],
    *,
    expires_in: str | float | timedelta | None = None,
    expires_at: datetime | float | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """A token for end-user `claims` (its `act`), signed with a State Backed key, exactly as
    `signToken({stateBackedKeyId, stateBackedSecretKey}, claims, {expires, issuer})` makes it.

    Give `expires_in` (a span such as "1h" or "7d", seconds, or a timedelta) or `expires_at`
    (a datetime or epoch seconds; it wins if both are given). `issuer` defaults to
    `https://<key id>.client.statebacked.dev/`; `now` (epoch seconds) replaces the clock."""
    issued = math.floor(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "act": dict(claims),
        "aud": STATEBACKED_AUDIENCE,
        "exp": _expiry(issued, expires_in, expires_at),
        "iss": issuer or f"https://{key_id}.client.statebacked.dev/",
        "iat": issued,
    }
    return _hs256(payload, secret, {"kid": key_id, "typ": None})


def anonymous_subject_token(
    org_id: str, session_id: str, device_id: str, *, now: float | None = None
) -> str:
    """The subject token the official client signs for an anonymous session (HS256 keyed by
    the UTF-8 org id, `aud` = `iss` = `https://<org id>.anonymous.auth.statebacked.dev`)."""
    scope = f"https://{org_id}.anonymous.auth.statebacked.dev"
    issued = math.floor(time.time() if now is None else now)
    payload = {
        "aud": scope,
        "iss": scope,
        "iat": issued,
        "exp": issued + ANONYMOUS_LIFETIME_S,
        "sid": session_id,
        "did": device_id,
    }
    return _hs256(payload, org_id, {"typ": "JWT"})


def _expiry(
    issued: int, expires_in: str | float | timedelta | None, expires_at: datetime | float | None
) -> int:
    if isinstance(expires_at, datetime):
        return math.floor(expires_at.timestamp())
    if expires_at is not None:
        return math.floor(expires_at)
    if isinstance(expires_in, str):
        return issued + parse_time_span(expires_in)
    if isinstance(expires_in, timedelta):
        return issued + math.floor(expires_in.total_seconds())
    if expires_in is not None:
        return issued + math.floor(expires_in)
    raise ValueError("a token needs expires_in or expires_at (as @statebacked/token's expires)")


class _HS256(HMACAlgorithm):
    """HS256 without PyJWT's warning about keys under 32 bytes: the keys here are the
    protocol's (an org id for anonymous sessions, the caller's own key secret), not ours to
    lengthen, and a warning per token would only be noise."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)

    def check_key_length(self, key: bytes) -> None:
        return None


_JWS = jwt.PyJWS(algorithms=[])
_JWS.register_algorithm("HS256", _HS256())


def _hs256(payload: Mapping[str, Any], secret: str, headers: dict[str, Any]) -> str:
    # Serialized as JSON.stringify does (no spaces, non-ASCII kept), so that the bytes, and so
    # the signature, are the JavaScript library's.
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return _JWS.encode(body, secret.encode(), algorithm="HS256", headers=headers)


def token_expiry(token: str) -> float | None:
    """The `exp` of a JWT (epoch seconds), read without verifying it; None if it has none."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


# --- obtaining -----------------------------------------------------------------------------


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


_process_session: str | None = None


def _default_session() -> str:
    global _process_session
    if _process_session is None:
        _process_session = str(uuid.uuid4())
    return _process_session


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
        session = yield from _resolve(config.session_id or _default_session())
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
