"""Token exchange (`POST /tokens`), anonymous sessions, identity and token providers, against
the real server (contract §1 #22-28, §2.3-2.5), both clients.

The server does not serve `/tokens`, `/idps` or `/token-providers` yet (issue #14); these
tests are written as they must pass once it does. Strict, so the day they pass the marks must
go."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from backstate_client import (
    AnonymousSession,
    ApiError,
    IdentityProviderToken,
    RejectedByMachineAuthorizerError,
)

from tests.client.conftest import MakeClient
from tests.conftest import Server

# Each anonymous session keeps to its own instances.
SESSIONS = """
import { createMachine } from "xstate";
export default createMachine({
  id: "notes", initial: "open", context: { sid: null },
  states: { open: { on: { close: "closed" } }, closed: {} },
});
export const allowRead = ({ context, authContext }) => context.sid === authContext.sid;
export const allowWrite = ({ type, context, authContext }) =>
  authContext.auth === "anonymous" &&
  (type === "initialization" || context.sid === authContext.sid);
"""

# Only the identity provider's user named in the context may touch it.
OWNED = """
import { createMachine } from "xstate";
export default createMachine({ id: "doc", initial: "draft", context: { owner: null },
  states: { draft: { on: { publish: "published" } }, published: {} } });
export const allowRead = ({ context, authContext }) =>
  context.owner === authContext.sub && authContext.via === "idp";
export const allowWrite = ({ context, authContext }) =>
  context.owner === authContext.sub && authContext.via === "idp";
"""

IDP_ISSUER = "https://idp.example.com/"
IDP_AUDIENCE = "backstate-tests"
IDP_KEY = b"a shared secret of the identity provider, 32+ bytes"


def test_anonymous_sessions_are_kept_apart(
    client: Any, make_client: MakeClient, server: Server
) -> None:
    client.machines.create("notes")
    client.machine_versions.create("notes", SESSIONS, make_current=True)
    org = server.admin.org_id
    mine = make_client(token=AnonymousSession(org, session_id="session-1"))
    theirs = make_client(token=AnonymousSession(org, session_id=lambda: "session-2"))
    created = mine.machine_instances.create("notes", "n1", context={"sid": "session-1"})
    assert created["state"] == "open"
    assert mine.machine_instances.send_event("notes", "n1", "close")["state"] == "closed"
    with pytest.raises(RejectedByMachineAuthorizerError):
        theirs.machine_instances.get("notes", "n1")
    claims = jwt.decode(mine.token(), options={"verify_signature": False})
    assert claims["act"] == {"sid": "session-1", "did": "session-1", "auth": "anonymous"}


def test_identity_provider_tokens_are_exchanged(client: Any, make_client: MakeClient) -> None:
    client.identity_providers.upsert(
        iss=IDP_ISSUER, aud=IDP_AUDIENCE, algs=["HS256"], key=IDP_KEY,
        mapping={"sub.$": "$.sub", "email.$": "$.email"},
    )  # fmt: skip
    idps = client.identity_providers.list()["idps"]
    assert [(p["iss"], p["aud"], p["algs"]) for p in idps] == [
        (IDP_ISSUER, IDP_AUDIENCE, ["HS256"])
    ]
    key = client.keys.create("exchange", use="production")
    client.token_providers.upsert(
        service="web", key_id=key["id"], mapping={"sub.$": "$.sub", "via": "idp"}
    )
    providers = client.token_providers.list()["tokenProviders"]
    assert [(p["service"], p["keyId"]) for p in providers] == [("web", key["id"])]
    client.machines.create("doc")
    client.machine_versions.create("doc", OWNED, make_current=True)

    org = client.orgs.list()["orgs"][0]["id"]
    exchanged = client.tokens.exchange(org, "web", idp_token("carol"))
    claims = jwt.decode(exchanged, key["key"].encode(), algorithms=["HS256"],
                        audience="https://api.statebacked.dev/")
    assert claims["act"] == {"sub": "carol", "via": "idp"}

    calls: list[int] = []

    def carol_token() -> str:
        calls.append(1)
        return idp_token("carol")

    carol = make_client(token=IdentityProviderToken(carol_token, org, "web"))
    carol.machine_instances.create("doc", "d1", context={"owner": "carol"})
    assert carol.machine_instances.send_event("doc", "d1", "publish")["state"] == "published"
    assert calls == [1]  # exchanged once, then cached
    dave = make_client(token=IdentityProviderToken(idp_token("dave"), org, "web"))
    with pytest.raises(RejectedByMachineAuthorizerError):
        dave.machine_instances.get("doc", "d1")

    client.token_providers.delete("web")
    client.identity_providers.delete(iss=IDP_ISSUER, aud=IDP_AUDIENCE)
    assert client.token_providers.list()["tokenProviders"] == []
    assert client.identity_providers.list()["idps"] == []
    with pytest.raises(ApiError) as refused:
        client.tokens.exchange(org, "web", idp_token("carol"))
    assert refused.value.status in (400, 403)


def idp_token(sub: str) -> str:
    now = int(time.time())
    claims = {"iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": sub, "iat": now, "exp": now + 600,
              "email": f"{sub}@example.com"}  # fmt: skip
    return jwt.encode(claims, IDP_KEY, algorithm="HS256")
