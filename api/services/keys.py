"""API keys: created with a secret shown once, stored sealed under the server secret."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from api import ids
from api.auth import Principal
from api.crypto import ServerKeys
from api.key_cache import KeyCache
from api.scopes import Scope
from runtime.clock import Clock
from runtime.errors import MissingScopeError, NotFoundError
from runtime.store import Database
from runtime.store import keys as key_store
from runtime.store.clock import to_datetime
from runtime.store.models import Key


@dataclass(frozen=True)
class NewKey:
    id: str
    secret: str


class KeyService:
    def __init__(
        self, db: Database, keys: ServerKeys, clock: Clock, cache: KeyCache, *, page_size: int
    ):
        self._db = db
        self._keys = keys
        self._clock = clock
        self._cache = cache
        self._page_size = page_size

    def create(self, principal: Principal, name: str, scopes: list[Scope]) -> NewKey:
        """A key in the caller's org; it may not hold a scope the caller lacks."""
        missing = sorted(set(scopes) - principal.scopes)
        if missing:
            raise MissingScopeError(f"cannot grant scopes this key lacks: {', '.join(missing)}")
        return self.create_in_org(principal.org_id, name, scopes)

    def create_in_org(self, org_id: uuid.UUID, name: str, scopes: list[Scope]) -> NewKey:
        with self._db.transaction() as session:
            return self.add(session, org_id, name, scopes)

    def add(self, session: Session, org_id: uuid.UUID, name: str, scopes: list[Scope]) -> NewKey:
        """A new key, in the caller's transaction (it exists once that commits)."""
        key_id = uuid.uuid4()
        secret = "sbsec_" + secrets.token_urlsafe(32)
        key_store.create(
            session,
            key_id=key_id,
            org_id=org_id,
            name=name,
            scopes=list(scopes),
            sealed_secret=self._keys.seal(secret, bound_to=key_id.bytes),
            now=to_datetime(self._clock.now_ms()),
        )
        return NewKey(ids.encode("sbk", key_id), secret)

    def reveal(self, key_id: uuid.UUID) -> str | None:
        """The secret of a key (operator use only: `backstate init`), or None if gone."""
        with self._db.transaction() as session:
            key = key_store.find(session, key_id)
            sealed = None if key is None else key.secret
        return None if sealed is None else self._keys.open(sealed, bound_to=key_id.bytes)

    def list_page(self, principal: Principal, cursor: str | None) -> tuple[list[Key], str | None]:
        with self._db.transaction() as session:
            return key_store.list_page(
                session, principal.org_id, cursor=cursor, limit=self._page_size
            )

    def delete(self, principal: Principal, pretty_id: str) -> None:
        key_id = ids.decode("sbk", pretty_id)
        if key_id is None:
            raise NotFoundError("key not found", parameter="keyId")
        with self._db.transaction() as session:
            key_store.delete_one(session, principal.org_id, key_id)
        self._cache.forget(key_id)  # other processes forget it when their entry expires
