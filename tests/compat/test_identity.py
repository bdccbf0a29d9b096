"""Signing in from the browser, with the unmodified official clients against a real
`backstate serve` process: `@statebacked/client` with anonymous sessions and with an identity
provider's tokens (RS256, its JWKS served over HTTPS by a local issuer, rotated midway), and
smply's `identity-providers` and `token-providers` commands, and `orgs create` then
`keys create` in the new org.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.compat.conftest import (
    Key,
    Run,
    backstate_json,
    node_missing,
    run_node,
    run_smply,
    serve,
    smply_login,
)
from tests.support.client import Api
from tests.support.databases import sqlite_url
from tests.support.identity import OWNED, access_token, exchange, hs_token
from tests.support.issuer import Issuer, Tls, serve_issuer

pytestmark = [pytest.mark.compat, pytest.mark.slow]


@dataclass(frozen=True)
class IdentityServer:
    url: str
    org_id: str
    closed_org_id: str
    admin: Key
    production: Key
    issuer: Issuer
    ca_file: Path


@pytest.fixture(scope="module")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    reason = node_missing()
    if reason is not None:
        pytest.skip(reason)
    tls = Tls.make(tmp_path_factory.mktemp("tls"))
    database_url = sqlite_url(tmp_path_factory.mktemp("identity-db"))
    made = backstate_json("init", "--json", "--database-url", database_url)
    admin = Key(made["keyId"], made["secret"])
    # The server trusts the local issuer's CA; it fetches the JWKS again on any unknown kid.
    env = {"BACKSTATE_JWKS_CA_FILE": str(tls.ca_file), "BACKSTATE_JWKS_REFRESH_MIN_S": "0"}
    with (
        serve_issuer(Issuer(audience="backstate-compat"), tls) as issuer,
        serve(database_url, env) as url,
        Api.for_key(url, admin.key_id, admin.secret) as api,
    ):
        api.create_machine("owned", OWNED)
        production = api.ok("POST", "/keys", {"name": "web", "use": "production"})
        idp = {"iss": issuer.url, "aud": issuer.audience, "jwksUrl": issuer.jwks_url}
        api.ok("POST", "/idps", {**idp, "algs": ["RS256"], "mapping": {"sub.$": "$.sub"}})
        api.ok("POST", "/token-providers", {"service": "web", "keyId": production["id"],
                                            "mapping": {"sub.$": "$.sub"}})  # fmt: skip
        closed = api.ok("POST", "/orgs", {"name": "closed", "allowAnonymousAccess": False})
        yield IdentityServer(
            url=url,
            org_id=made["orgId"],
            closed_org_id=closed["id"],
            admin=admin,
            production=Key(production["id"], production["key"]),
            issuer=issuer,
            ca_file=tls.ca_file,
        )


# --- @statebacked/client -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def seen(identity_server: IdentityServer) -> dict[str, Any]:
    env = {
        "API_URL": identity_server.url,
        "ORG_ID": identity_server.org_id,
        "CLOSED_ORG_ID": identity_server.closed_org_id,
        "ISSUER_URL": identity_server.issuer.url,
        "NODE_EXTRA_CA_CERTS": str(identity_server.ca_file),
    }
    done = run_node("identity_flow.mjs", env)
    assert done.returncode == 0, done.describe()
    observations: dict[str, Any] = json.loads(done.stdout)
    return observations


def value(seen: dict[str, Any], name: str) -> Any:
    observation = seen[name]
    assert observation["ok"], f"{name} raised {observation['error']}"
    return observation["value"]


def raised(seen: dict[str, Any], name: str, cls: str, code: str | None = None) -> None:
    observation = seen[name]
    assert not observation["ok"], f"{name} should raise {cls}: returned {observation['value']}"
    assert observation["error"]["class"] == cls, observation["error"]
    if code is not None:
        assert observation["error"]["code"] == code, observation["error"]


def test_an_anonymous_client_creates_and_drives_its_instance(seen: dict[str, Any]) -> None:
    assert value(seen, "A creates")["state"] == "idle"
    assert value(seen, "A sends")["publicContext"] == {"count": 1}
    assert value(seen, "A reads")["publicContext"] == {"count": 1}
    expiry = value(seen, "A learned its token's expiry")
    assert isinstance(expiry, int) and expiry > time.time() * 1000, "atob read the token's exp"


def test_anonymous_sessions_are_kept_apart(seen: dict[str, Any]) -> None:
    rejected = ("RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer")
    raised(seen, "B reads A's", *rejected)
    raised(seen, "B sends to A's", *rejected)
    assert value(seen, "B creates")["state"] == "idle"
    assert value(seen, "B sends")["publicContext"] == {"count": 1}
    raised(seen, "A reads B's", *rejected)
    raised(seen, "A creates one owned by B", *rejected)
    raised(seen, "A reads alice's", *rejected)
    assert value(seen, "A's instance after all")["publicContext"] == {"count": 1}


def test_anonymous_access_switched_off_is_refused(seen: dict[str, Any]) -> None:
    raised(seen, "anonymous in an org without anonymous access", "UnauthorizedError",
           "anonymous-access-disabled")  # fmt: skip


def test_an_identity_provider_token_works_across_a_key_rotation(
    seen: dict[str, Any], identity_server: IdentityServer
) -> None:
    assert value(seen, "alice creates")["state"] == "idle"
    assert value(seen, "alice sends")["publicContext"] == {"count": 1}
    assert value(seen, "issuer rotates its key") == {"kid": "key-2"}
    assert value(seen, "alice sends after the rotation")["publicContext"] == {"count": 2}
    assert value(seen, "alice's first client still sends")["publicContext"] == {"count": 3}
    assert identity_server.issuer.fetches == 2, "one fetch, then one for the new kid"


def test_exchange_failures_reach_the_client_as_unauthorized(seen: dict[str, Any]) -> None:
    raised(seen, "an unknown token provider", "UnauthorizedError", "unknown-token-provider")
    raised(seen, "a token from nowhere", "UnauthorizedError", "invalid-subject-token")


CALLS = {
    "A creates", "A sends", "A reads", "A learned its token's expiry", "B reads A's",
    "B sends to A's", "B creates", "B sends", "A reads B's", "A creates one owned by B",
    "A's instance after all", "anonymous in an org without anonymous access", "alice creates",
    "alice sends", "A reads alice's", "issuer rotates its key", "alice sends after the rotation",
    "alice's first client still sends", "an unknown token provider", "a token from nowhere",
}  # fmt: skip


def test_the_flow_made_exactly_the_checked_calls(seen: dict[str, Any]) -> None:
    assert set(seen) == CALLS


# --- smply -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smply(identity_server: IdentityServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("smply-identity-home")
    smply_login(home, identity_server.url, identity_server.admin)

    def run(*args: str, stdin: str | None = None) -> Run:
        done = run_smply(home, identity_server.url, *args, stdin=stdin)
        assert done.returncode == 0, done.describe()
        return done

    return run


def _documents(done: Run) -> list[Any]:
    """The JSON documents smply printed after its text lines (one per page for listings)."""
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in "[{")
    text, decoder, documents, position = "\n".join(lines[start:]), json.JSONDecoder(), [], 0
    while position < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        while position < len(text) and text[position].isspace():
            position += 1
    return documents


def printed(done: Run) -> Any:
    """The one JSON document smply printed."""
    documents = _documents(done)
    assert len(documents) == 1, done.describe()
    return documents[0]


def listed_items(done: Run) -> list[Any]:
    """A listing's items across its pages (the server lists 2 per page: smply follows the
    cursor and prints each page)."""
    return [item for page in _documents(done) for item in page]


MAPPING = '{"sub.$":"$.sub"}'


def test_smply_identity_providers(smply: Any, identity_server: IdentityServer) -> None:
    upserted = smply("identity-providers", "upsert", "-a", "app", "-i", "https://issuer.example/",
                     "-l", "RS256", "ES256", "-m", MAPPING,
                     "-j", "https://issuer.example/jwks.json")  # fmt: skip
    assert "Identity provider configuration updated" in upserted.stdout
    smply("identity-providers", "upsert-supabase", "-p", "proj", "-s", "secret", "-m", MAPPING)
    smply("identity-providers", "upsert-auth0", "-d", "tenant.example", "-m", MAPPING)
    # the long form: the global -u (--api-url) shadows upsert-cognito's -u
    smply("identity-providers", "upsert-cognito", "--user-pool-id", "pool1", "-r", "eu-west-1",
          "-m", MAPPING)  # fmt: skip
    idps = listed_items(smply("identity-providers", "list"))
    listed = {(i.get("aud"), i.get("iss")): i for i in idps}
    mapping = {"sub.$": "$.sub"}
    assert listed[("app", "https://issuer.example/")] == {
        "aud": "app", "iss": "https://issuer.example/", "algs": ["ES256", "RS256"],
        "jwksUrl": "https://issuer.example/jwks.json", "mapping": mapping}  # fmt: skip
    assert listed[("authenticated", "https://proj.supabase.co/auth/v1")] == {
        "aud": "authenticated", "iss": "https://proj.supabase.co/auth/v1", "algs": ["HS256"],
        "mapping": mapping}  # fmt: skip
    assert listed[("https://tenant.example/api/v2/", "https://tenant.example/")]["jwksUrl"] == (
        "https://tenant.example/.well-known/jwks.json")  # fmt: skip
    cognito = "https://cognito-idp.eu-west-1.amazonaws.com/pool1"
    assert listed[(None, cognito)] == {"iss": cognito, "algs": ["RS256"],
                                       "jwksUrl": f"{cognito}/.well-known/jwks.json",
                                       "mapping": mapping}  # fmt: skip

    # smply sent the Supabase secret as base64url: a token Supabase would sign now exchanges
    smply("token-providers", "upsert", "-s", "supa", "-m", MAPPING,
          "-k", identity_server.production.key_id)  # fmt: skip
    now = int(time.time())
    supabase_token = hs_token({"aud": "authenticated", "iss": "https://proj.supabase.co/auth/v1",
                               "sub": "sam", "exp": now + 600}, "secret")  # fmt: skip
    minted = access_token(exchange(identity_server.url, identity_server.org_id, "supa",
                                   supabase_token))  # fmt: skip
    assert jwt.decode(minted, options={"verify_signature": False})["act"] == {"sub": "sam"}

    aborted = smply("identity-providers", "delete", "-a", "app", "-i", "https://issuer.example/",
                    stdin="n\n")  # fmt: skip
    assert "Aborting" in aborted.stdout
    deleted = smply("identity-providers", "delete", "-a", "app", "-i", "https://issuer.example/",
                    stdin="y\n")  # fmt: skip
    assert "Identity provider configuration deleted" in deleted.stdout
    after = listed_items(smply("identity-providers", "list"))
    assert ("app", "https://issuer.example/") not in {(i.get("aud"), i.get("iss")) for i in after}
    assert len(after) == len(listed) - 1


def test_smply_token_providers(smply: Any, identity_server: IdentityServer) -> None:
    key = identity_server.production.key_id
    created = smply("token-providers", "upsert", "-s", "mobile", "-m",
                    '{"sub.$":"$.sub","app":"mobile"}', "-k", key)  # fmt: skip
    assert "Created token provider mobile" in created.stdout
    listed = {p["service"]: p for p in listed_items(smply("token-providers", "list"))}
    assert listed["mobile"] == {"service": "mobile", "keyId": key,
                                "mapping": {"sub.$": "$.sub", "app": "mobile"}}  # fmt: skip
    assert "web" in listed
    aborted = smply("token-providers", "delete", "-s", "mobile", stdin="mobil\n")
    assert "Aborting" in aborted.stdout
    deleted = smply("token-providers", "delete", "-s", "mobile", stdin="mobile\n")
    assert "Deleted token provider mobile" in deleted.stdout
    assert "mobile" not in {p["service"] for p in listed_items(smply("token-providers", "list"))}


def test_smply_orgs_create_then_keys_create_in_it(
    smply: Any, identity_server: IdentityServer
) -> None:
    org = printed(smply("orgs", "create", "-n", "fresh"))["orgId"]
    assert org.startswith("org_") and org != identity_server.org_id
    made = printed(smply("-o", org, "keys", "create", "-n", "fresh-ci", "--use", "ci"))
    assert made["id"].startswith("sbk_") and made["key"].startswith("sbsec_")
    keys = listed_items(smply("-o", org, "keys", "list"))
    assert [k["name"] for k in keys] == ["fresh-ci"]
    orgs = {o["id"] for o in listed_items(smply("orgs", "list"))}
    assert {identity_server.org_id, org} <= orgs
    # the new key works in the new org, as any key does
    with Api.for_key(identity_server.url, made["id"], made["key"]) as fresh:
        assert fresh.ok("GET", "/machines") == {"machines": []}
