"""Who is calling: bearer-token verification, scopes and the end-user auth context.

Accepted tokens are key-signed JWTs as `@statebacked/token` mints them: HS256, `kid` = key id,
HMAC key = the UTF-8 bytes of the key's `sbsec_...` secret, `aud` = State Backed's API URL (or
another configured audience), `exp` required (checked with a small leeway). The key decides the
org and the scopes; `act` becomes the auth context (top-level `sub` as fallback). smply's
"session" token is simply such a JWT signed with an admin key.

Every failure is an `AuthError` (403) raised before anything is read or written.

Opened keys (org, scopes, decrypted secret) are cached per process for `key_cache_s` seconds,
so most requests verify their JWT without a database read. Deleting a key drops it from the
deleting process's cache at once; other processes stop accepting it within `key_cache_s`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from api import ids
from api.crypto import ServerKeys
from api.scopes import ADMIN_SCOPE, Scope
from api.settings import Settings
from runtime.errors import AuthError, InvalidRequestError, MissingScopeError
from runtime.store import Database
from runtime.store import keys as key_store


@dataclass(frozen=True)
class Principal:
    org_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[str]
    auth_context: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    def require(self, *any_of: Scope) -> None:
        """Raise `MissingScopeError` unless the key holds at least one of `any_of`."""
        if not self.scopes.intersection(any_of):
            raise MissingScopeError(
                f"this key lacks the {' or '.join(any_of)} scope", parameter=None
            )


@dataclass(frozen=True)
class Credentials:
    """The raw auth material of one request (header values, or query values on `/rt`)."""

    authorization: str | None
    org_id: str | None = None
    act: str | None = None


@dataclass(frozen=True)
class OpenedKey:
    """What verifying a token needs from a key: its org, its scopes and its plain secret."""

    org_id: uuid.UUID
    scopes: frozenset[str]
    secret: str


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


class Authenticator:
    def __init__(self, db: Database, keys: ServerKeys, settings: Settings, cache: KeyCache):
        self._db = db
        self._keys = keys
        self._settings = settings
        self._cache = cache

    def authenticate(self, creds: Credentials) -> Principal:
        """The caller behind `creds`; blocking (may read the key)."""
        token, key_id = _token_and_key_id(creds)
        return self._principal(creds, token, key_id, self._cache.get(key_id) or self._open(key_id))

    def authenticate_cached(self, creds: Credentials) -> Principal | None:
        """The caller behind `creds` if its key is cached (never blocks), else None: then call
        `authenticate` off the event loop. Malformed tokens fail here already."""
        token, key_id = _token_and_key_id(creds)
        key = self._cache.get(key_id)
        return None if key is None else self._principal(creds, token, key_id, key)

    def _principal(
        self, creds: Credentials, token: str, key_id: uuid.UUID, key: OpenedKey
    ) -> Principal:
        claims = self._verify(token, key.secret)
        _check_org(creds.org_id, key.org_id)
        principal = Principal(key.org_id, key_id, key.scopes, _auth_context(claims))
        if creds.act is not None:
            principal = _impersonate(principal, creds.act)
        return principal

    def _open(self, key_id: uuid.UUID) -> OpenedKey:
        with self._db.read() as session:
            key = key_store.find(session, key_id)
            if key is None:
                raise AuthError("unknown key")
            org_id, scopes, sealed = key.org_id, frozenset(key.scopes), key.secret
        secret = self._keys.open(sealed, bound_to=key_id.bytes)
        if secret is None:
            raise AuthError("this key cannot be opened with the server's current secret")
        opened = OpenedKey(org_id, scopes, secret)
        self._cache.put(key_id, opened)
        return opened

    def _verify(self, token: str, secret: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret.encode(),
                algorithms=["HS256"],
                audience=self._settings.accepted_audiences,
                leeway=self._settings.token_leeway_s,
                options={"require": ["exp", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token audience not accepted") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        return claims


def _token_and_key_id(creds: Credentials) -> tuple[str, uuid.UUID]:
    token = _bearer(creds.authorization)
    return token, _key_id(token)


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing bearer token")
    return token.strip()


def _key_id(token: str) -> uuid.UUID:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AuthError("malformed token") from exc
    if header.get("alg") != "HS256":
        raise AuthError("token must be signed with HS256")
    kid = header.get("kid")
    key_id = ids.decode("sbk", kid) if isinstance(kid, str) else None
    if key_id is None:
        raise AuthError("token has no valid key id (kid)")
    return key_id


def _check_org(requested: str | None, org_id: uuid.UUID) -> None:
    if requested and requested != ids.encode("org", org_id):
        raise AuthError("this key does not belong to the requested org", code="missing-org")


def _auth_context(claims: dict[str, Any]) -> dict[str, Any]:
    act = claims.get("act")
    context = dict(act) if isinstance(act, dict) else {}
    if "sub" not in context and isinstance(claims.get("sub"), str):
        context["sub"] = claims["sub"]
    return context


def _impersonate(principal: Principal, act: str) -> Principal:
    principal.require(ADMIN_SCOPE)
    try:
        context = json.loads(act)
    except ValueError as exc:
        raise InvalidRequestError(
            "x-statebacked-act must be a JSON object", parameter="x-statebacked-act"
        ) from exc
    if not isinstance(context, dict):
        raise InvalidRequestError(
            "x-statebacked-act must be a JSON object", parameter="x-statebacked-act"
        )
    return Principal(principal.org_id, principal.key_id, principal.scopes, context)
