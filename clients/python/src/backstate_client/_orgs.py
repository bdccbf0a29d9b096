"""Orgs, their API keys, and billing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backstate_client._flow import Flow, Request, call, cursor_query, path
from backstate_client._namespace import Mode, Namespace, operation
from backstate_client._types import Billing, KeyCreated, KeyPage, KeyUse, OrgCreated, OrgPage


class Orgs(Namespace[Mode]):
    @operation
    def list(self, cursor: str | None = None) -> Flow[OrgPage]:
        """The orgs the caller can act in."""
        page: OrgPage = yield from call(Request("GET", "/orgs", query=cursor_query(cursor)))
        return page

    @operation
    def create(
        self, name: str, *, allow_anonymous_access: bool | None = None
    ) -> Flow[OrgCreated]:
        """Create an org; its id."""
        body: dict[str, Any] = {"name": name}
        if allow_anonymous_access is not None:
            body["allowAnonymousAccess"] = allow_anonymous_access
        made: OrgCreated = yield from call(Request("POST", "/orgs", json=body))
        return made


class Keys(Namespace[Mode]):
    """API keys: they sign your users' tokens (`sign_token`) and decide their scopes."""

    @operation
    def list(self, cursor: str | None = None) -> Flow[KeyPage]:
        """A page of the org's keys (never their secrets)."""
        page: KeyPage = yield from call(Request("GET", "/keys", query=cursor_query(cursor)))
        return page

    @operation
    def create(
        self, name: str, *, use: KeyUse | None = None, scopes: Sequence[str] | None = None
    ) -> Flow[KeyCreated]:
        """Create a key for a `use` ("production": events and reads; "ci": deploying
        versions) or with explicit `scopes`. The secret (`key`) is returned only this once."""
        body: dict[str, Any] = {"name": name}
        if use is not None:
            body["use"] = use
        if scopes is not None:
            body["scopes"] = list(scopes)
        made: KeyCreated = yield from call(Request("POST", "/keys", json=body))
        return made

    @operation
    def delete(self, key_id: str) -> Flow[None]:
        """Delete a key: tokens it signed stop working."""
        yield from call(Request("DELETE", path("keys", key_id)))


class BillingInfo(Namespace[Mode]):
    @operation
    def get(self) -> Flow[Billing]:
        """Where the org's billing is managed."""
        billing: Billing = yield from call(Request("GET", "/billing"))
        return billing
