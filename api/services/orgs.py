"""Organizations. Keys belong to exactly one org, so a key sees only its own org."""

from __future__ import annotations

from typing import Literal

from api import ids
from api.auth import Principal
from runtime.clock import Clock
from runtime.store import Database
from runtime.store import orgs as org_store
from runtime.store.clock import to_datetime
from runtime.store.models import Org

Role = Literal["admin", "read", "write"]
_WRITE_SCOPES = {"events.write", "instances.write", "machines.write", "machine-versions.write"}


class OrgService:
    def __init__(self, db: Database, clock: Clock):
        self._db = db
        self._clock = clock

    def list_page(self, principal: Principal) -> list[tuple[Org, Role]]:
        with self._db.transaction() as session:
            org = org_store.get(session, principal.org_id)
        return [(org, role_of(principal))]

    def create(self, name: str) -> str:
        with self._db.transaction() as session:
            org = org_store.create(session, name, now=to_datetime(self._clock.now_ms()))
            return ids.encode("org", org.id)


def role_of(principal: Principal) -> Role:
    if principal.is_admin:
        return "admin"
    return "write" if principal.scopes & _WRITE_SCOPES else "read"
