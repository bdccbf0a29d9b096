"""Token exchange and what it is configured with: identity providers (whose tokens are
trusted, and which claims are taken from them) and token providers (which key signs the
exchanged token, and which claims it carries)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from backstate_client._flow import Flow, Request, call, cursor_query, path
from backstate_client._namespace import Mode, Namespace, operation
from backstate_client._tokens import exchange
from backstate_client._types import IdentityProviderPage, TokenProviderPage


class IdentityProviders(Namespace[Mode]):
    """The identity providers whose tokens `tokens.exchange` accepts (admin)."""

    @operation
    def list(self, cursor: str | None = None) -> Flow[IdentityProviderPage]:
        """A page of the org's identity providers."""
        page: IdentityProviderPage = yield from call(
            Request("GET", "/idps", query=cursor_query(cursor))
        )
        return page

    @operation
    def upsert(
        self,
        *,
        algs: Sequence[str],
        mapping: Mapping[str, Any],
        aud: str | None = None,
        iss: str | None = None,
        key: bytes | None = None,
        jwks_url: str | None = None,
    ) -> Flow[None]:
        """Trust tokens whose `aud`/`iss` are these (at least one of them), verified with
        `algs` and a shared `key` (raw bytes) or the keys at `jwks_url`. `mapping` extracts
        claims: `{"sub.$": "$.sub", "provider": "auth0"}` (a key ending in `.$` takes a JSONPath
        into the token's claims)."""
        body: dict[str, Any] = {"algs": list(algs), "mapping": dict(mapping)}
        if aud is not None:
            body["aud"] = aud
        if iss is not None:
            body["iss"] = iss
        if key is not None:
            body["key"] = base64.urlsafe_b64encode(key).decode().rstrip("=")
        if jwks_url is not None:
            body["jwksUrl"] = jwks_url
        yield from call(Request("POST", "/idps", json=body))

    @operation
    def delete(self, *, aud: str | None = None, iss: str | None = None) -> Flow[None]:
        """Stop trusting the identity provider with this `aud`/`iss`."""
        body = {name: value for name, value in (("aud", aud), ("iss", iss)) if value is not None}
        yield from call(Request("DELETE", "/idps", json=body))


class TokenProviders(Namespace[Mode]):
    """The services `tokens.exchange` mints tokens for (admin)."""

    @operation
    def list(self, cursor: str | None = None) -> Flow[TokenProviderPage]:
        """A page of the org's token providers."""
        page: TokenProviderPage = yield from call(
            Request("GET", "/token-providers", query=cursor_query(cursor))
        )
        return page

    @operation
    def upsert(self, *, service: str, key_id: str, mapping: Mapping[str, Any]) -> Flow[None]:
        """Mint tokens for `service`, signed with the key `key_id` (its scopes apply), whose
        `act` is `mapping` applied to the identity provider's claims."""
        body = {"service": service, "keyId": key_id, "mapping": dict(mapping)}
        yield from call(Request("POST", "/token-providers", json=body))

    @operation
    def delete(self, service: str) -> Flow[None]:
        """Stop minting tokens for `service`."""
        yield from call(Request("DELETE", path("token-providers", service)))


class Tokens(Namespace[Mode]):
    """RFC 8693 token exchange (`POST /tokens`, no bearer token needed)."""

    @operation
    def exchange(self, org_id: str, service: str, token: str) -> Flow[str]:
        """A State Backed token for an identity provider's `token`, minted by the token
        provider `service` of `org_id`."""
        return (yield from exchange(org_id, service, token))
