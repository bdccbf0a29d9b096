"""Bringing a database to life: schema, server secret, default org and admin key.

`backstate init` is idempotent. The first run creates the default org and an admin key; later
runs print the same org and key *with its secret*, decrypted: whoever runs `init` holds the
server secret and could decrypt it anyway, and scripts (CI, docker entrypoints) can run `init`
every time. If that key was deleted, `init` makes a new one.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from api import ids
from api.crypto import ServerKeys
from api.key_cache import KeyCache
from api.scopes import USE_SCOPES, KeyUse
from api.services.keys import KeyService
from api.settings import Settings
from runtime.clock import Clock, SystemClock
from runtime.errors import NotFoundError
from runtime.store import Database, meta
from runtime.store import orgs as org_store
from runtime.store.clock import to_datetime
from runtime.store.models import Org

DEFAULT_ORG_NAME = "default"
NO_CACHE = KeyCache(0)  # the command line reads each key once


@dataclass(frozen=True)
class InitResult:
    org_id: str
    key_id: str
    secret: str
    created: bool


def open_database(settings: Settings) -> Database:
    """The database, migrated to the newest schema."""
    db = Database(settings.database_url, pool_size=settings.db_pool_size,
                  durable=settings.durability == "sync")
    db.migrate()
    return db


def server_secret(settings: Settings, db: Database) -> str:
    """`BACKSTATE_SECRET` if set, else the one generated on first start and kept in the DB."""
    if settings.secret is not None:
        return settings.secret.get_secret_value()
    with db.transaction() as session:
        return meta.get_or_create(session, meta.SERVER_SECRET, secrets.token_urlsafe(32))


def init(settings: Settings, db: Database, clock: Clock | None = None) -> InitResult:
    clock = clock or SystemClock()
    keys = KeyService(db, ServerKeys(server_secret(settings, db)), clock, NO_CACHE, page_size=1)
    org_id = _default_org(db, clock)
    with db.transaction() as session:
        stored_key = meta.get(session, meta.DEFAULT_ADMIN_KEY)
    key_id = ids.decode("sbk", stored_key) if stored_key else None
    secret = keys.reveal(key_id) if key_id else None
    if stored_key and secret:
        return InitResult(ids.encode("org", org_id), stored_key, secret, created=False)
    made = keys.create_in_org(org_id, "admin", list(USE_SCOPES["admin"]))
    with db.transaction() as session:
        meta.put(session, meta.DEFAULT_ADMIN_KEY, made.id)
    return InitResult(ids.encode("org", org_id), made.id, made.secret, created=True)


def create_key(
    settings: Settings, db: Database, org: str, name: str, use: KeyUse
) -> tuple[str, str]:
    """A new key in `org` (a pretty `org_...` id); its id and secret."""
    org_id = ids.decode("org", org)
    if org_id is None:
        raise NotFoundError(f"{org!r} is not an org id (org_...)", parameter="org")
    with db.transaction() as session:
        org_store.get(session, org_id)
    keys = KeyService(
        db, ServerKeys(server_secret(settings, db)), SystemClock(), NO_CACHE, page_size=1
    )
    made = keys.create_in_org(org_id, name, list(USE_SCOPES[use]))
    return made.id, made.secret


def _default_org(db: Database, clock: Clock) -> uuid.UUID:
    with db.transaction() as session:
        stored = meta.get(session, meta.DEFAULT_ORG)
        org_id = ids.decode("org", stored) if stored else None
        if org_id is not None and session.get(Org, org_id) is not None:
            return org_id
        org = org_store.create(session, DEFAULT_ORG_NAME, now=to_datetime(clock.now_ms()))
        meta.put(session, meta.DEFAULT_ORG, ids.encode("org", org.id))
        return org.id
