"""`/idps`, `/token-providers`, and orgs made through the API (who may act in them)."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api.app import create_app
from api.bootstrap import open_database
from api.settings import Settings
from runtime.engine import Runtime
from runtime.store.models import Base
from tests.conftest import Server
from tests.support.client import Api, assert_error
from tests.support.server import run_server

JWKS = "https://issuer.example/.well-known/jwks.json"
IDP = {"iss": "https://issuer.example/", "aud": "app", "algs": ["RS256"], "jwksUrl": JWKS,
       "mapping": {"sub.$": "$.sub"}}  # fmt: skip


def test_identity_provider_lifecycle(api: Api) -> None:
    assert api.ok("GET", "/idps") == {"idps": []}
    assert api.ok("POST", "/idps", IDP) is None  # 204
    supabase = {"aud": "authenticated", "iss": "https://p.supabase.co/auth/v1", "algs": ["HS256"],
                "key": "c2VjcmV0", "mapping": {"sub.$": "$.sub"}}  # fmt: skip
    api.ok("POST", "/idps", supabase)
    api.ok("POST", "/idps", {"iss": "https://iss-only.example", "algs": ["ES256", "EdDSA"],
                             "jwksUrl": JWKS, "mapping": {"sub.$": "$.sub"}})  # fmt: skip
    listed = api.ok("GET", "/idps")["idps"]
    assert listed[0] == IDP
    assert listed[1] == {k: v for k, v in supabase.items() if k != "key"}, "keys are never shown"
    assert listed[2] == {"iss": "https://iss-only.example", "algs": ["ES256", "EdDSA"],
                         "jwksUrl": JWKS, "mapping": {"sub.$": "$.sub"}}  # fmt: skip

    # an upsert with the same (aud, iss) replaces
    api.ok("POST", "/idps", {**IDP, "algs": ["RS256", "PS256"], "mapping": {"id.$": "$.sub"}})
    listed = api.ok("GET", "/idps")["idps"]
    assert len(listed) == 3
    assert listed[0]["algs"] == ["PS256", "RS256"] and listed[0]["mapping"] == {"id.$": "$.sub"}

    assert api.request("DELETE", "/idps", {"aud": "app", "iss": IDP["iss"]}).status_code == 204
    assert_error(api.request("DELETE", "/idps", {"aud": "app", "iss": IDP["iss"]}), 404)
    assert_error(api.request("DELETE", "/idps", {"aud": "app"}), 404, "not-found")
    assert_error(api.request("DELETE", "/idps", {}), 400, "invalid-parameter")
    assert api.request("DELETE", "/idps", {"iss": "https://iss-only.example"}).status_code == 204
    assert [i["iss"] for i in api.ok("GET", "/idps")["idps"]] == [supabase["iss"]]


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"aud": None, "iss": None}, "aud"),
        ({"algs": []}, "algs"),
        ({"algs": ["none"]}, "algs.0"),
        ({"algs": ["RS256", "HS1"]}, "algs.1"),
        ({"jwksUrl": None}, "jwksUrl"),
        ({"jwksUrl": "http://issuer.example/jwks.json"}, "jwksUrl"),
        ({"jwksUrl": "file:///etc/passwd"}, "jwksUrl"),
        ({"algs": ["HS256"], "jwksUrl": None}, "key"),
        ({"algs": ["HS256"], "jwksUrl": None, "key": "not base64!"}, "key"),
        ({"algs": ["HS256"], "jwksUrl": None, "key": "c2VjcmV0", "iss": 3}, "iss"),
        ({"key": "c2VjcmV0"}, "key"),  # RS256 only: a shared key would be unused
        ({"algs": ["HS256"], "key": "c2VjcmV0"}, "jwksUrl"),  # HS256 only: the URL is unused
        ({"mapping": {"sub.$": "sub"}}, "mapping.sub.$"),
        ({"mapping": "$.sub"}, "mapping"),
        ({"mapping": None}, "mapping"),
    ],
)
def test_identity_provider_validation(api: Api, change: dict[str, Any], parameter: str) -> None:
    body = {k: v for k, v in {**IDP, **change}.items() if v is not None}
    assert_error(api.request("POST", "/idps", body), 400, "invalid-parameter")
    assert api.request("POST", "/idps", body).json()["parameter"] == parameter
    assert api.ok("GET", "/idps") == {"idps": []}


def test_token_provider_lifecycle(server: Server, api: Api) -> None:
    web = api.ok("POST", "/keys", {"name": "web"})
    mobile = api.ok("POST", "/keys", {"name": "mobile"})
    assert api.ok("GET", "/token-providers") == {"tokenProviders": []}
    mapping = {"sub.$": "$.sub", "service": "web", "nested": {"email.$": "$.email"}}
    assert api.ok("POST", "/token-providers", {"service": "web", "keyId": web["id"],
                                               "mapping": mapping}) is None  # fmt: skip
    api.ok("POST", "/token-providers", {"service": "mobile_2", "keyId": mobile["id"],
                                        "mapping": {"sub.$": "$.sub"}})  # fmt: skip
    api.ok("POST", "/token-providers", {"service": "web", "keyId": mobile["id"],
                                        "mapping": mapping})  # fmt: skip
    listed = api.ok("GET", "/token-providers")["tokenProviders"]
    assert listed == [
        {"service": "web", "keyId": mobile["id"], "mapping": mapping},
        {"service": "mobile_2", "keyId": mobile["id"], "mapping": {"sub.$": "$.sub"}},
    ]
    assert api.request("DELETE", "/token-providers/web").status_code == 204
    assert_error(api.request("DELETE", "/token-providers/web"), 404)
    assert_error(api.request("DELETE", "/token-providers/not%20a%20slug"), 400)
    assert [p["service"] for p in api.ok("GET", "/token-providers")["tokenProviders"]] == [
        "mobile_2"
    ]


def test_token_provider_validation(server: Server, api: Api) -> None:
    web = api.ok("POST", "/keys", {"name": "web"})["id"]
    elsewhere = api.ok("POST", "/orgs", {"name": "elsewhere"})["id"]
    with server.client(**{"x-statebacked-org-id": elsewhere}) as other:
        foreign = other.ok("POST", "/keys", {"name": "foreign"})["id"]
    good = {"service": "web", "keyId": web, "mapping": {"sub.$": "$.sub"}}
    cases = [
        ({"service": "anonymous-statebacked-dev"}, 400, "service"),
        ({"service": "a/b"}, 400, "service"),
        ({"service": ""}, 400, "service"),
        ({"keyId": "sbk_AAAAAAAAAAAAAAAAAAAAAA"}, 400, "keyId"),
        ({"keyId": "garbage"}, 400, "keyId"),
        ({"keyId": foreign}, 400, "keyId"),
        ({"mapping": {"sub.$": "$.["}}, 400, "mapping.sub.$"),
        ({"mapping": []}, 400, "mapping"),
    ]
    for change, status, parameter in cases:
        response = api.request("POST", "/token-providers", {**good, **change})
        assert_error(response, status, "invalid-parameter")
        assert response.json()["parameter"] == parameter, (change, response.json())
    assert api.ok("GET", "/token-providers") == {"tokenProviders": []}


def test_a_token_provider_cannot_sign_with_scopes_its_creator_lacks(
    server: Server, api: Api
) -> None:
    admin_key = server.admin.key_id
    limited = api.ok("POST", "/keys", {"name": "t", "scopes": ["tokens.admin", "state.read"]})
    reader = api.ok("POST", "/keys", {"name": "r", "scopes": ["state.read"]})
    with Api.for_key(server.url, limited["id"], limited["key"]) as client:
        body = {"service": "web", "keyId": admin_key, "mapping": {"sub.$": "$.sub"}}
        assert_error(client.request("POST", "/token-providers", body), 403, "missing-scope")
        assert client.ok("POST", "/token-providers", {**body, "keyId": reader["id"]}) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/idps", None),
        ("POST", "/idps", IDP),
        ("DELETE", "/idps", {"aud": "app"}),
        ("GET", "/token-providers", None),
        ("POST", "/token-providers", {"service": "s", "keyId": "sbk_x", "mapping": {}}),
        ("DELETE", "/token-providers/s", None),
    ],
)
def test_providers_need_tokens_admin(
    server: Server, api: Api, method: str, path: str, body: Any
) -> None:
    production = api.ok("POST", "/keys", {"name": "p", "use": "production"})
    with Api.for_key(server.url, production["id"], production["key"]) as client:
        assert_error(client.request(method, path, body), 403, "missing-scope")
    with Api(server.url, None) as anonymous:
        assert_error(anonymous.request(method, path, body), 403, "unauthorized")


# --- orgs made through the API ------------------------------------------------------------


def test_the_key_that_creates_an_org_administers_it(server: Server, api: Api) -> None:
    other_admin = api.ok("POST", "/keys", {"name": "other admin", "use": "admin"})
    made = api.ok("POST", "/orgs", {"name": "second"})["id"]
    orgs = {o["id"]: o for o in api.ok("GET", "/orgs")["orgs"]}
    assert set(orgs) == {server.admin.org_id, made}
    assert orgs[made]["name"] == "second" and orgs[made]["role"] == "admin"
    assert orgs[made]["allowAnonymousAccess"] is True

    with server.client(**{"x-statebacked-org-id": made}) as in_second:
        key = in_second.ok("POST", "/keys", {"name": "k", "use": "ci"})
        assert [k["id"] for k in in_second.ok("GET", "/keys")["keys"]] == [key["id"]]
        in_second.ok("POST", "/machines", {"slug": "only-in-second"})
    # the new key acts in the new org only
    with Api.for_key(server.url, key["id"], key["key"]) as second_key:
        assert [m["slug"] for m in second_key.ok("GET", "/machines")["machines"]] == [
            "only-in-second"
        ]
        with Api.for_key(server.url, key["id"], key["key"],
                         **{"x-statebacked-org-id": server.admin.org_id}) as escaping:  # fmt: skip
            assert_error(escaping.request("GET", "/machines"), 403, "missing-org")
    assert api.ok("GET", "/machines")["machines"] == [], "the home org is untouched"
    # another admin of the home org did not create it
    with Api.for_key(server.url, other_admin["id"], other_admin["key"],
                     **{"x-statebacked-org-id": made}) as other:  # fmt: skip
        assert_error(other.request("GET", "/keys"), 403, "missing-org")
    # a key that created an org can still be deleted (its access goes with it)
    with Api.for_key(server.url, other_admin["id"], other_admin["key"]) as creator:
        creator.ok("POST", "/orgs", {"name": "third"})
    assert api.request("DELETE", f"/keys/{other_admin['id']}").status_code == 204


def test_an_org_is_usable_at_once_from_another_process(
    server: Server, api: Api, settings: Settings, shared_runtime: Runtime
) -> None:
    """Another server on the same database, whose key cache already holds the admin key,
    reads the key's orgs again rather than refusing the new org."""
    other_app = create_app(settings, runtime=shared_runtime)
    with (
        run_server(other_app) as other_url,
        Api.for_key(other_url, server.admin.key_id, server.admin.secret) as there,
    ):
        assert there.ok("GET", "/keys")["keys"]  # the key is now cached there
        made = api.ok("POST", "/orgs", {"name": "second"})["id"]
        there.http.headers["x-statebacked-org-id"] = made
        assert there.ok("GET", "/keys") == {"keys": []}


def test_only_admins_create_orgs(server: Server, api: Api) -> None:
    production = api.ok("POST", "/keys", {"name": "p", "use": "production"})
    with Api.for_key(server.url, production["id"], production["key"]) as client:
        assert_error(client.request("POST", "/orgs", {"name": "x"}), 403, "missing-scope")


def test_the_models_are_what_the_migrations_make(database_url: str) -> None:
    db = open_database(Settings(database_url=database_url))
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []
