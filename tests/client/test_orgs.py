"""Keys, orgs and billing through the Python client, against a real server."""

from __future__ import annotations

from typing import Any

import pytest
from backstate_client import MissingScopeError, NotFoundError, UnauthorizedError, sign_token

from tests.client.conftest import MakeClient
from tests.client.test_machines import all_pages
from tests.conftest import Server


def test_keys_create_list_delete(client: Any, make_client: MakeClient) -> None:
    web = client.keys.create("web", use="production")
    ci = client.keys.create("ci", use="ci")
    client.keys.create("logs", scopes=["logs.read"])
    assert web["id"].startswith("sbk_") and web["key"].startswith("sbsec_")
    keys = {k["name"]: k for k in all_pages(client.keys.list, key="keys")}
    assert set(keys) == {"admin", "web", "ci", "logs"}
    assert "key" not in keys["web"]  # never the secret again
    assert set(keys["web"]["scopes"]) >= {"events.write", "state.read", "instances.write"}
    assert set(keys["ci"]["scopes"]) == {
        "machines.read", "machines.write", "machine-versions.read", "machine-versions.write",
    }  # fmt: skip
    assert keys["logs"]["scopes"] == ["logs.read"]

    deployer = make_client(token=sign_token(ci["id"], ci["key"], {}, expires_in="1h"))
    deployer.machines.create("m")
    with pytest.raises(MissingScopeError):
        deployer.keys.list()
    client.keys.delete(ci["id"])
    with pytest.raises(UnauthorizedError):
        deployer.machines.list()
    with pytest.raises(NotFoundError):
        client.keys.delete(ci["id"])
    assert {k["name"] for k in all_pages(client.keys.list, key="keys")} == {"admin", "web", "logs"}


def test_orgs_and_billing(client: Any, server: Server) -> None:
    orgs = client.orgs.list()["orgs"]
    assert [(o["id"], o["role"]) for o in orgs] == [(server.admin.org_id, "admin")]
    assert orgs[0]["limits"]["monthlyEventsLimit"] > 0
    made = client.orgs.create("acme")
    assert made["id"].startswith("org_") and made["id"] != server.admin.org_id
    assert client.billing.get()["url"] == server.settings.billing_url
