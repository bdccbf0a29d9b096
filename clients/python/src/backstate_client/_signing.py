"""Signing tokens as `@statebacked/token` does.

`sign_token` makes the same JWT as `signToken` of `@statebacked/token` 0.2.0 (jose): header
`{"alg":"HS256","kid":<key id>}` (no `typ`), claims `act`, `aud`, `exp`, `iss`, `iat` in that
order, serialized as JSON.stringify does, HMAC-SHA256 keyed by the UTF-8 bytes of the
`sbsec_...` secret. For the same instant the two produce byte-identical tokens.
`anonymous_subject_token` is the token `@statebacked/client` signs for an anonymous session.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

STATEBACKED_AUDIENCE = "https://api.statebacked.dev/"
ANONYMOUS_LIFETIME_S = 86400

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
