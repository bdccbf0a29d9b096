"""Minting key-signed JWTs exactly as `@statebacked/token` does (used by the CLI and tests)."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt

from api.settings import STATEBACKED_AUDIENCE

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def mint(
    key_id: str,
    secret: str,
    *,
    act: dict[str, Any] | None = None,
    expires_in_s: int = 3600,
    now: int | None = None,
) -> str:
    """HS256 over the UTF-8 `sbsec_...` secret, `kid` = key id, aud = State Backed's API."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "act": act or {},
        "aud": STATEBACKED_AUDIENCE,
        "exp": issued + expires_in_s,
        "iss": f"https://{key_id}.client.statebacked.dev/",
        "iat": issued,
    }
    return jwt.encode(claims, secret.encode(), algorithm="HS256", headers={"kid": key_id})


def parse_duration(text: str) -> int:
    """Seconds in `90`, `30s`, `10m`, `1h`, `7d` or `2w`."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (try 30s, 10m, 1h, 7d)")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]
