"""Backstate access tokens minted by token exchange, readable by the official client.

A minted token is a key-signed token like any other (HS256, `kid` = the token provider's key,
`aud` = State Backed's API, `exp`, `act` = the mapped claims), so `api/auth.py` verifies it,
and caches it, exactly as it does `@statebacked/token`'s.

The official client learns a token's expiry with `JSON.parse(atob(token.split(".")[1]))`, and
`atob` throws on base64url's `-` and `_`: it would then keep an expired token forever. The
payload is therefore encoded so that its base64url has neither, always, rather than by retrying
a nonce until it happens to (which cannot succeed for a claim such as "???"). Why it works: JSON
is encoded ASCII-only (`\\uXXXX` for the rest), and base64 of ASCII bytes can only produce the
sextets 62 (`-`) and 63 (`_`) from the last byte of a 3-byte group whose low six bits are
111110 or 111111: `>`, `?`, `~` or DEL. JSON never needs those outside strings, and inside
strings they are written `\\u003e`, `\\u003f`, `\\u007e`, `\\u007f`, which decode to the same
text.
"""

from __future__ import annotations

import json
from typing import Any

import jwt

from api.settings import STATEBACKED_AUDIENCE

_ATOB_UNSAFE = str.maketrans({c: f"\\u{ord(c):04x}" for c in ">?~\x7f"})


class _AtobSafeJSON(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        return super().encode(o).translate(_ATOB_UNSAFE)


def mint(
    key_id: str, secret: str, act: dict[str, Any], *, issuer: str, now_s: int, ttl_s: int
) -> str:
    """An access token for `act`, signed with the key `key_id` (its `sbsec_...` secret)."""
    claims = {
        "act": act,
        "aud": STATEBACKED_AUDIENCE,
        "exp": now_s + ttl_s,
        "iat": now_s,
        "iss": issuer,
    }
    return jwt.encode(
        claims,
        secret.encode(),
        algorithm="HS256",
        headers={"kid": key_id, "typ": "JWT"},
        json_encoder=_AtobSafeJSON,
    )
