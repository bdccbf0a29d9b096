"""`/idps` and `/token-providers`: the configuration token exchange reads, per org.

An identity provider is keyed by (`aud`, `iss`), at least one of them set. HS256/384/512 need
its shared `key` (base64url of the key bytes; kept sealed under the server secret and never
shown again); RS*/PS*/ES*/EdDSA need its `jwksUrl` (https). A `key` no allowed algorithm uses,
or a `jwksUrl` no allowed algorithm uses, is refused rather than silently ignored.

A token provider is keyed by its service name (a slug: it travels in a URL path) and signs with
one of the org's keys, which may not hold a scope the caller lacks (as for `POST /keys`). The
anonymous service's name is reserved.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from api import ids
from api.auth import Principal
from api.crypto import ServerKeys
from api.identity import anonymous
from api.identity.jwks import ASYMMETRIC_ALGS, check_url
from api.identity.mapping import compile_mapping
from api.identity.subject import HMAC_ALGS, IdpConfig
from runtime.clock import Clock
from runtime.errors import InvalidRequestError, MissingScopeError
from runtime.store import Database
from runtime.store import identity as store
from runtime.store import keys as key_store
from runtime.store.clock import to_datetime
from runtime.store.models import IdentityProvider, TokenProvider

_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
T = TypeVar("T")


@dataclass(frozen=True)
class IdpInput:
    aud: str | None
    iss: str | None
    algs: list[str]
    key: str | None
    jwks_url: str | None
    mapping: dict[str, Any]


class IdentityProviders:
    def __init__(self, db: Database, keys: ServerKeys, clock: Clock, *, page_size: int):
        self._db = db
        self._keys = keys
        self._clock = clock
        self._page_size = page_size

    def list_page(
        self, principal: Principal, cursor: str | None
    ) -> tuple[list[IdentityProvider], str | None]:
        with self._db.read() as session:
            return store.list_idps(session, principal.org_id, cursor=cursor, limit=self._page_size)

    def upsert(self, principal: Principal, given: IdpInput) -> None:
        aud, iss = _aud_iss(given.aud, given.iss)
        algs = sorted(set(given.algs))
        key = _shared_key(given.key, algs)
        if given.jwks_url is not None:
            check_url(given.jwks_url)
            if not ASYMMETRIC_ALGS.intersection(algs):
                raise InvalidRequestError(
                    "jwksUrl is only used by RS*, PS*, ES* and EdDSA, and algs has none of them",
                    parameter="jwksUrl",
                )
        elif ASYMMETRIC_ALGS.intersection(algs):
            raise InvalidRequestError(
                "RS*, PS*, ES* and EdDSA verify with the issuer's keys: give its jwksUrl",
                parameter="jwksUrl",
            )
        compile_mapping(given.mapping)
        sealed = None
        if key is not None and given.key is not None:
            sealed = self._keys.seal(given.key, bound_to=_bound(principal.org_id, aud, iss))
        fields = store.IdpFields(aud, iss, algs, sealed, given.jwks_url, given.mapping)
        now = to_datetime(self._clock.now_ms())

        def write() -> None:
            with self._db.transaction() as session:
                store.upsert_idp(session, principal.org_id, fields, now=now)

        _retrying_once(write)

    def delete(self, principal: Principal, aud: str | None, iss: str | None) -> None:
        aud_, iss_ = _aud_iss(aud, iss)
        with self._db.transaction() as session:
            store.delete_idp(session, principal.org_id, aud_, iss_)

    def configs(self, org_id: uuid.UUID, auds: list[str], iss: str | None) -> list[IdpConfig]:
        """The providers that would verify a token with these `aud` values and `iss`, most
        specific first."""
        with self._db.read() as session:
            rows = store.matching_idps(session, org_id, auds, iss)
        return [self._config(row) for row in rows]

    def _config(self, row: IdentityProvider) -> IdpConfig:
        key = None
        if row.key is not None:
            text = self._keys.open(row.key, bound_to=_bound(row.org_id, row.aud, row.iss))
            key = None if text is None else _decode(text)  # None: the server secret changed
        return IdpConfig(
            aud=row.aud,
            iss=row.iss,
            algs=frozenset(row.algs),
            hmac_key=key,
            jwks_url=row.jwks_url,
            mapping=compile_mapping(row.mapping),
        )


class TokenProviders:
    def __init__(self, db: Database, clock: Clock, *, page_size: int):
        self._db = db
        self._clock = clock
        self._page_size = page_size

    def list_page(
        self, principal: Principal, cursor: str | None
    ) -> tuple[list[TokenProvider], str | None]:
        with self._db.read() as session:
            return store.list_token_providers(
                session, principal.org_id, cursor=cursor, limit=self._page_size
            )

    def upsert(
        self, principal: Principal, service: str, key: str, mapping: dict[str, Any]
    ) -> None:
        if service == anonymous.SERVICE:
            raise InvalidRequestError(
                f"{service!r} is the built-in anonymous service (switch it with "
                "PUT /anonymous-access)",
                parameter="service",
            )
        compile_mapping(mapping)
        key_id = self._signing_key(principal, key)
        now = to_datetime(self._clock.now_ms())

        def write() -> None:
            with self._db.transaction() as session:
                store.upsert_token_provider(
                    session, principal.org_id, service, key_id, mapping, now=now
                )

        _retrying_once(write)

    def delete(self, principal: Principal, service: str) -> None:
        with self._db.transaction() as session:
            store.delete_token_provider(session, principal.org_id, service)

    def find(self, org_id: uuid.UUID, service: str) -> TokenProvider | None:
        with self._db.read() as session:
            return store.find_token_provider(session, org_id, service)

    def _signing_key(self, principal: Principal, pretty: str) -> uuid.UUID:
        key_id = ids.decode("sbk", pretty)
        with self._db.read() as session:
            key = None if key_id is None else key_store.find(session, key_id)
            if key is None or key.org_id != principal.org_id:
                raise InvalidRequestError(
                    f"{pretty!r} is not a key of this org", parameter="keyId"
                )
            missing = sorted(set(key.scopes) - principal.scopes)
        if missing:
            raise MissingScopeError(
                f"this key cannot let a token provider sign with scopes it lacks: "
                f"{', '.join(missing)}"
            )
        assert key_id is not None
        return key_id


def _aud_iss(aud: str | None, iss: str | None) -> tuple[str, str]:
    if not aud and not iss:
        raise InvalidRequestError("give aud, iss, or both", parameter="aud")
    return aud or "", iss or ""


def _shared_key(key: str | None, algs: list[str]) -> bytes | None:
    uses_key = HMAC_ALGS.intersection(algs)
    if key is None:
        if uses_key:
            raise InvalidRequestError(
                f"{', '.join(sorted(uses_key))} verify with a shared key: give key "
                "(base64url of its bytes)",
                parameter="key",
            )
        return None
    if not uses_key:
        raise InvalidRequestError(
            "key is only used by HS256, HS384 and HS512, and algs has none of them",
            parameter="key",
        )
    decoded = _decode(key)
    if decoded is None or not decoded:
        raise InvalidRequestError("key must be the base64url of the key's bytes", parameter="key")
    return decoded


def _decode(text: str) -> bytes | None:
    if not _B64URL.fullmatch(text):
        return None
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None


def _bound(org_id: uuid.UUID, aud: str, iss: str) -> bytes:
    """What a sealed shared key is bound to: it opens only for this org's (aud, iss)."""
    return b"idp\n" + org_id.bytes + f"\n{aud}\n{iss}".encode()


def _retrying_once(write: Callable[[], T]) -> T:
    """Two concurrent first upserts of one name: the loser's insert fails on the unique
    constraint; run it again, as the update it now is."""
    try:
        return write()
    except IntegrityError:
        return write()
