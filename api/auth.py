"""Who is calling: bearer-token verification, scopes and the end-user auth context.

Accepted tokens are key-signed JWTs as `@statebacked/token` mints them: HS256, `kid` = key id,
HMAC key = the UTF-8 bytes of the key's `sbsec_...` secret, `aud` = State Backed's API URL (or
another configured audience), `exp` required (checked with a small leeway). The key decides the
org and the scopes; `act` becomes the auth context (top-level `sub` as fallback). smply's
"session" token is simply such a JWT signed with an admin key. Tokens minted by token exchange
(`api/identity/`) are such tokens too, signed with their token provider's key.

A request acts in the key's own org, or in the org its `x-statebacked-org-id` names if the key
created that org through `POST /orgs` (`org_admin_keys`): as a State Backed user who creates
an org becomes its admin, so `smply orgs create` then `smply keys create` in it works.

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
from runtime.store import orgs as org_store


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
            verified = self._check(token, key_id, self.opened_key(key_id))
        if not _may_act_in(creds.org_id, verified.key):
            # The key may have been given this org (POST /orgs) since it was cached.
            verified = self._check(token, verified.key_id, self._open(verified.key_id))
        return _principal(creds, verified)

    def authenticate_stale(self, creds: Credentials, grace_s: float) -> Principal:
        """As `authenticate`, but a validly signed token that expired less than `grace_s` ago
        is accepted too: for the realtime socket, which the official client reopens with the
        token it first opened it with, however old (api/realtime/connection.py)."""
        token = _bearer(creds.authorization)
        leeway = max(grace_s, self._settings.token_leeway_s)
        verified = self._tokens.get(token)
        if verified is None:
            key_id = _key_id(token)
            key = self.opened_key(key_id)
            verified = VerifiedToken(key_id, key, self._verify(token, key.secret, leeway))
        if not _may_act_in(creds.org_id, verified.key):
            # The key may have been given this org (POST /orgs) since it was cached.
            key = self._open(verified.key_id)
            verified = VerifiedToken(verified.key_id, key,
                                     self._verify(token, key.secret, leeway))
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
        if not _may_act_in(creds.org_id, verified.key):
            return None  # `authenticate` reads the key's orgs again before refusing
        return _principal(creds, verified)

    def opened_key(self, key_id: uuid.UUID) -> OpenedKey:
        """A key with its secret: from this process's cache, else read (blocking)."""
        return self._cache.get(key_id) or self._open(key_id)

    def forget(self, key_id: uuid.UUID) -> None:
        """Read this key again on its next use (its orgs changed)."""
        self._cache.forget(key_id)

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
            orgs = [org_id, *org_store.administered_by(session, key_id)]
        secret = self._keys.open(sealed, bound_to=key_id.bytes)
        if secret is None:
            raise AuthError("this key cannot be opened with the server's current secret")
        opened = OpenedKey(org_id, scopes, secret, {ids.encode("org", o): o for o in orgs})
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
    org_id = _org(creds.org_id, key)
    context = _auth_context(verified.claims)
    principal = Principal(org_id, verified.key_id, key.scopes, context)
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


def _may_act_in(requested: str | None, key: OpenedKey) -> bool:
    return not requested or requested in key.orgs


def _org(requested: str | None, key: OpenedKey) -> uuid.UUID:
    """The org a request acts in: the one it names (x-statebacked-org-id), which the key must
    belong to or have created, else the key's own."""
    if not requested:
        return key.org_id
    org_id = key.orgs.get(requested)
    if org_id is None:
        raise AuthError("this key does not belong to the requested org", code="missing-org")
    return org_id


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
