"""What authentication keeps per process: opened keys, and the tokens verified with them.

An opened key (org, scopes, decrypted secret) is kept for `key_cache_s` seconds after it was
read, so most requests need no database read. A verified token is kept while the very key it
was verified with is still in that cache and until the token expires: a client reuses its token
for many requests, and each reuse then costs a dictionary lookup instead of a JWT
verification (base64, JSON, HMAC, claims), a noticeable share of an event's CPU.
Forgetting a key (it was deleted) also ends its tokens' entries.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OpenedKey:
    """What verifying a token needs from a key: its org, its scopes and its plain secret, and
    the orgs it may act in (`org_...` id -> id: its own, and those it created with
    `POST /orgs`)."""

    org_id: uuid.UUID
    scopes: frozenset[str]
    secret: str
    orgs: dict[str, uuid.UUID] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedToken:
    key_id: uuid.UUID
    key: OpenedKey
    claims: dict[str, Any]


class KeyCache:
    """Opened keys by id, each kept for `ttl_s` seconds after it was read (0: no caching)."""

    def __init__(self, ttl_s: float, *, now: Callable[[], float] = time.monotonic):
        self._ttl_s = ttl_s
        self._now = now
        self._keys: dict[uuid.UUID, tuple[float, OpenedKey]] = {}
        self._lock = threading.Lock()

    def get(self, key_id: uuid.UUID) -> OpenedKey | None:
        with self._lock:
            expires, key = self._keys.get(key_id, (0.0, None))
            if key is not None and expires <= self._now():
                del self._keys[key_id]
                return None
            return key

    def put(self, key_id: uuid.UUID, key: OpenedKey) -> None:
        if self._ttl_s > 0:
            with self._lock:
                self._drop_expired()
                self._keys[key_id] = (self._now() + self._ttl_s, key)

    def forget(self, key_id: uuid.UUID) -> None:
        with self._lock:
            self._keys.pop(key_id, None)

    def _drop_expired(self) -> None:
        # Callers may present made-up key ids, so expired entries are swept as new ones arrive.
        now = self._now()
        for key_id in [k for k, (expires, _) in self._keys.items() if expires <= now]:
            del self._keys[key_id]


class TokenCache:
    """Verified tokens (the whole compact JWT is the key), at most `size` of them."""

    def __init__(self, keys: KeyCache, *, size: int = 4096, clock: Callable[[], float] = time.time):
        self._keys = keys
        self._size = size
        self._clock = clock  # wall clock: `exp` is in epoch seconds
        self._tokens: dict[str, tuple[float, VerifiedToken]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> VerifiedToken | None:
        with self._lock:
            until, verified = self._tokens.get(token, (0.0, None))
        if verified is None:
            return None
        if until <= self._clock() or self._keys.get(verified.key_id) is not verified.key:
            with self._lock:
                self._tokens.pop(token, None)
            return None
        return verified

    def put(self, token: str, verified: VerifiedToken, *, until: float) -> None:
        """Keep `verified` until `until` (epoch seconds: its expiry plus the leeway)."""
        with self._lock:
            if len(self._tokens) >= self._size:
                self._tokens.pop(next(iter(self._tokens)))  # the oldest entry
            self._tokens[token] = (until, verified)
