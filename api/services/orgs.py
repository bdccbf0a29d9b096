"""Organizations. A key belongs to one org, and may also act in the orgs it created through
`POST /orgs` (as a State Backed user who creates an org becomes its admin)."""

from __future__ import annotations

from typing import Literal

from api import ids
from api.auth import Authenticator, Principal
from runtime.clock import Clock
from runtime.store import Database
from runtime.store import keys as key_store
from runtime.store import orgs as org_store
from runtime.store.clock import to_datetime
from runtime.store.models import Key, Org

Role = Literal["admin", "read", "write"]
_WRITE_SCOPES = {"events.write", "instances.write", "machines.write", "machine-versions.write"}


class OrgService:
    def __init__(self, db: Database, clock: Clock, auth: Authenticator):
        self._db = db
        self._clock = clock
        self._auth = auth

    def list_page(self, principal: Principal) -> list[tuple[Org, Role]]:
        """The caller's key's own org and the orgs it created."""
        with self._db.read() as session:
            key = session.get(Key, principal.key_id)
            home = principal.org_id if key is None else key.org_id
            org_ids = [home, *org_store.administered_by(session, principal.key_id)]
            orgs = org_store.list_by_ids(session, org_ids)
        return [(org, role_of(principal)) for org in orgs]

    def create(self, principal: Principal, name: str, *, allow_anonymous: bool) -> str:
        """A new org, in which the caller's key may act from now on (with its own scopes)."""
        now = to_datetime(self._clock.now_ms())
        with self._db.transaction() as session:
            org = org_store.create(session, name, now=now, allow_anonymous=allow_anonymous)
            org_store.add_admin_key(session, org.id, principal.key_id, now=now)
            org_id = org.id
        self._auth.forget(principal.key_id)  # this process reads its orgs again at once
        return ids.encode("org", org_id)

    def anonymous_access(self, principal: Principal) -> bool:
        with self._db.read() as session:
            return org_store.get(session, principal.org_id).allow_anonymous

    def set_anonymous_access(self, principal: Principal, allowed: bool) -> None:
        """Switch the org's anonymous service. Off also deletes its signing key: the tokens
        it minted stop working (in other processes within `key_cache_s`)."""
        with self._db.transaction() as session:
            dropped = org_store.set_anonymous(session, principal.org_id, allowed)
            if dropped is not None and key_store.find(session, dropped) is not None:
                key_store.delete_one(session, principal.org_id, dropped)
        if dropped is not None:
            self._auth.forget(dropped)


def role_of(principal: Principal) -> Role:
    if principal.is_admin:
        return "admin"
    return "write" if principal.scopes & _WRITE_SCOPES else "read"
