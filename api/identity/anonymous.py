"""The built-in anonymous service (`anonymous-statebacked-dev`), exactly as the official client
uses it: the client signs its own subject token, HS256 keyed by the UTF-8 org id, with
`aud` = `iss` = `https://<orgId>.anonymous.auth.statebacked.dev` and claims `sid` (session)
and `did` (device); exchanging it yields `authContext = {sid, did, auth: "anonymous"}`.

Anyone can make such a token (the org id is not a secret): anonymous sessions tell sessions
apart, they do not authenticate anyone. That is why the service is switched per org
(`orgs.allow_anonymous`, on unless `POST /orgs` says otherwise or `PUT /anonymous-access`
turns it off), and why it serves only its own service name: the org's other token providers
never accept anonymous subject tokens.

The identity provider and token provider are built in rather than stored rows. Their tokens
are signed by a production key of the org named `anonymous-statebacked-dev` (listed with the
org's keys), made on first use; switching the service off deletes that key, so the tokens it
signed stop working too.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from api import ids
from api.identity.mapping import Mapping, compile_mapping
from api.identity.subject import IdpConfig, invalid
from api.scopes import USE_SCOPES
from api.services.keys import KeyService
from runtime.errors import AuthError
from runtime.store import Database
from runtime.store import keys as key_store
from runtime.store import orgs as org_store
from runtime.store.models import Org

SERVICE = "anonymous-statebacked-dev"
DISABLED = "anonymous-access-disabled"
UNKNOWN_TOKEN_PROVIDER = "unknown-token-provider"
_CLAIM_ATTEMPTS = 3

TOKEN_MAPPING: Mapping = compile_mapping({"sid.$": "$.sid", "did.$": "$.did", "auth": "anonymous"})
_IDP_MAPPING: Mapping = compile_mapping({"sid.$": "$.sid", "did.$": "$.did"})


def issuer(org: str) -> str:
    return f"https://{org}.anonymous.auth.statebacked.dev"


def identity_provider(org: str) -> IdpConfig:
    """The org's anonymous identity provider (`org` is its `org_...` id, the HMAC key)."""
    return IdpConfig(
        aud=issuer(org),
        iss=issuer(org),
        algs=frozenset({"HS256"}),
        hmac_key=org.encode(),
        jwks_url=None,
        mapping=_IDP_MAPPING,
    )


def check_session(claims: dict[str, object]) -> None:
    sid = claims.get("sid")
    if not isinstance(sid, str) or not sid:
        raise invalid("an anonymous subject token carries its session id in `sid`")


class _Lost(Exception):
    """Another request made the org's anonymous key first."""


class AnonymousKeys:
    """The key each org's anonymous service signs with."""

    def __init__(self, db: Database, keys: KeyService):
        self._db = db
        self._keys = keys

    def check_allowed(self, org_id: uuid.UUID) -> None:
        """`AuthError` unless the org exists and allows anonymous access."""
        with self._db.read() as session:
            _usable_key(session, org_id)

    def signing_key(self, org_id: uuid.UUID) -> uuid.UUID:
        """The org's anonymous key, made now if it has none (or it was deleted); `AuthError`
        if the org does not exist or does not allow anonymous access."""
        for _ in range(_CLAIM_ATTEMPTS):
            with self._db.read() as session:
                current = _usable_key(session, org_id)
            if current is not None:
                return current
            try:
                return self._make(org_id)
            except _Lost:
                continue  # read the winner's key (or that access was switched off)
        raise AuthError("the anonymous key could not be made; try again", code=DISABLED)

    def _make(self, org_id: uuid.UUID) -> uuid.UUID:
        with self._db.transaction() as session:
            if _usable_key(session, org_id) is not None:
                raise _Lost()
            replacing = session.get(Org, org_id).anonymous_key_id  # type: ignore[union-attr]
            made = self._keys.add(session, org_id, SERVICE, list(USE_SCOPES["production"]))
            key_id = ids.decode("sbk", made.id)
            assert key_id is not None
            if not org_store.claim_anonymous_key(session, org_id, key_id, replacing=replacing):
                raise _Lost()  # rolls the new key back
            return key_id


def _usable_key(session: Session, org_id: uuid.UUID) -> uuid.UUID | None:
    """The org's anonymous key if it has one that still exists; `AuthError` if the org does
    not exist or does not allow anonymous access."""
    org = session.get(Org, org_id)
    if org is None:
        raise AuthError(f"no token provider {SERVICE!r} in this org", code=UNKNOWN_TOKEN_PROVIDER)
    if not org.allow_anonymous:
        raise AuthError("anonymous access is switched off for this org", code=DISABLED)
    key_id = org.anonymous_key_id
    if key_id is not None and key_store.find(session, key_id) is not None:
        return key_id
    return None
