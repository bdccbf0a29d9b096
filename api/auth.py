"""Who is calling: bearer-token verification, scopes and the end-user auth context.

Accepted tokens are key-signed JWTs as `@statebacked/token` mints them: HS256, `kid` = key id,
HMAC key = the UTF-8 bytes of the key's `sbsec_...` secret, `aud` = State Backed's API URL (or
another configured audience), `exp` required (checked with a small leeway). The key decides the
org and the scopes; `act` becomes the auth context (top-level `sub` as fallback). smply's
"session" token is simply such a JWT signed with an admin key.

Every failure is an `AuthError` (403) raised before anything is read or written.

Keys and verified tokens are cached per process (see `key_cache.py`): most requests cost a
dictionary lookup. Deleting a key drops it and its tokens from the deleting process's caches at
once; other processes stop accepting it within `key_cache_s`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from api import ids
from api.crypto import ServerKeys
from api.key_cache import KeyCache, OpenedKey, TokenCache, VerifiedToken
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


class Authenticator:
    def __init__(self, db: Database, keys: ServerKeys, settings: Settings, cache: KeyCache):
        self._db = db
        self._keys = keys
        self._settings = settings
        self._cache = cache
        self._tokens = TokenCache(cache)

    def authenticate(self, creds: Credentials) -> Principal:
        """The caller behind `creds`; blocking (may read the key)."""
        token = _bearer(creds.authorization)
        verified = self._tokens.get(token)
        if verified is None:
            key_id = _key_id(token)
            verified = self._check(token, key_id, self._cache.get(key_id) or self._open(key_id))
        return _principal(creds, verified)

    def authenticate_stale(self, creds: Credentials, grace_s: float) -> Principal:
        """As `authenticate`, but a validly signed token that expired less than `grace_s` ago
        is accepted too: for the realtime socket, which the official client reopens with the
        token it first opened it with, however old (api/realtime/connection.py)."""
        token = _bearer(creds.authorization)
        verified = self._tokens.get(token)
        if verified is None:
            key_id = _key_id(token)
            key = self._cache.get(key_id) or self._open(key_id)
            leeway = max(grace_s, self._settings.token_leeway_s)
            verified = VerifiedToken(key_id, key, self._verify(token, key.secret, leeway))
        return _principal(creds, verified)

    def authenticate_cached(self, creds: Credentials) -> Principal | None:
        """The caller behind `creds` if its key is cached (never blocks), else None: then call
        `authenticate` off the event loop. Malformed tokens fail here already."""
        token = _bearer(creds.authorization)
        verified = self._tokens.get(token)
        if verified is None:
            key_id = _key_id(token)
            key = self._cache.get(key_id)
            if key is None:
                return None
            verified = self._check(token, key_id, key)
        return _principal(creds, verified)

    def _check(self, token: str, key_id: uuid.UUID, key: OpenedKey) -> VerifiedToken:
        claims = self._verify(token, key.secret)
        verified = VerifiedToken(key_id, key, claims)
        self._tokens.put(token, verified, until=claims["exp"] + self._settings.token_leeway_s)
        return verified

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

    def _verify(self, token: str, secret: str, leeway: float | None = None) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret.encode(),
                algorithms=["HS256"],
                audience=self._settings.accepted_audiences,
                leeway=self._settings.token_leeway_s if leeway is None else leeway,
                options={"require": ["exp", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token audience not accepted") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        return claims


def _principal(creds: Credentials, verified: VerifiedToken) -> Principal:
    key = verified.key
    _check_org(creds.org_id, key.org_id)
    context = _auth_context(verified.claims)
    principal = Principal(key.org_id, verified.key_id, key.scopes, context)
    if creds.act is not None:
        principal = _impersonate(principal, creds.act)
    return principal


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
