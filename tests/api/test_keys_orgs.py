"""Keys, orgs, billing and the unsupported member endpoints."""

from __future__ import annotations

from tests.conftest import Server
from tests.support.client import Api, assert_error


def test_key_lifecycle(server: Server, api: Api) -> None:
    made = api.ok("POST", "/keys", {"name": "ci key", "use": "ci"})
    assert made["id"].startswith("sbk_") and made["key"].startswith("sbsec_")
    keys = {k["id"]: k for k in api.ok("GET", "/keys")["keys"]}
    assert set(keys) == {server.admin.key_id, made["id"]}
    assert keys[made["id"]]["name"] == "ci key"
    assert keys[made["id"]]["scopes"] == sorted(
        ["machines.read", "machines.write", "machine-versions.read", "machine-versions.write"]
    )
    assert "key" not in keys[made["id"]] and "secret" not in keys[made["id"]]
    assert api.request("DELETE", f"/keys/{made['id']}").status_code == 204
    assert_error(api.request("DELETE", f"/keys/{made['id']}"), 404)
    assert_error(api.request("DELETE", "/keys/garbage"), 404)
    assert [k["id"] for k in api.ok("GET", "/keys")["keys"]] == [server.admin.key_id]


def test_default_use_is_production(api: Api) -> None:
    made = api.ok("POST", "/keys", {"name": "p"})
    key = next(k for k in api.ok("GET", "/keys")["keys"] if k["id"] == made["id"])
    assert set(key["scopes"]) >= {"events.write", "state.read", "instances.write"}


def test_keys_cannot_grant_scopes_they_lack(server: Server, api: Api) -> None:
    limited = api.ok("POST", "/keys", {"name": "kw", "scopes": ["org.keys.write", "state.read"]})
    with Api.for_key(server.url, limited["id"], limited["key"]) as client:
        assert client.request("POST", "/keys", {"name": "x", "scopes": ["state.read"]}).is_success
        assert_error(client.request("POST", "/keys", {"name": "y", "use": "admin"}), 403)
    assert {k["name"] for k in api.ok("GET", "/keys")["keys"]} == {"admin", "kw", "x"}


def test_orgs(server: Server, api: Api) -> None:
    orgs = api.ok("GET", "/orgs")["orgs"]
    assert [(o["id"], o["role"]) for o in orgs] == [(server.admin.org_id, "admin")]
    assert orgs[0]["limits"]["monthlyEventsLimit"] > 0
    created = api.ok("POST", "/orgs", {"name": "second"})
    assert created["id"].startswith("org_") and created["id"] != server.admin.org_id
    assert_error(api.request("POST", "/orgs", {"name": ""}), 400)


def test_billing_and_members(api: Api) -> None:
    assert api.ok("GET", "/billing")["url"].startswith("http")
    invite = api.http.post(
        "/org-members",
        content=b'{"email":"a@b.c","role":"write"}',
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert_error(invite, 501, "not-implemented")
    assert_error(api.request("PUT", "/some-invitation-code"), 501, "not-implemented")
