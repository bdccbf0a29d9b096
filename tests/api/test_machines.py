"""Machines: create, list (with cursor), get, delete."""

from __future__ import annotations

from tests.conftest import Server
from tests.support.bundles import COUNTER, TOGGLER
from tests.support.client import Api, assert_error


def test_create_get_and_list(api: Api) -> None:
    response = api.request("POST", "/machines", {"slug": "toggler"})
    assert response.status_code == 201 and response.content == b""

    got = api.ok("GET", "/machines/toggler")
    assert set(got["machine"]) >= {"createdAt"}
    assert "currentVersion" not in got["machine"]

    listed = api.ok("GET", "/machines")
    assert [m["slug"] for m in listed["machines"]] == ["toggler"]
    assert "cursor" not in listed


def test_current_version_is_shown(api: Api) -> None:
    version = api.create_machine("toggler", TOGGLER)
    got = api.ok("GET", "/machines/toggler")["machine"]
    assert got["currentVersion"]["id"] == version
    assert got["currentVersion"]["clientInfo"] == "test"
    listed = api.ok("GET", "/machines")["machines"][0]
    assert listed["currentVersion"]["id"] == version


def test_duplicate_machine_conflicts(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    assert_error(api.request("POST", "/machines", {"slug": "m"}), 409)
    assert len(api.ok("GET", "/machines")["machines"]) == 1


def test_invalid_slugs_are_rejected(api: Api) -> None:
    for slug in ["", "has space", "a/b", "x" * 129, "ünïcode", 12, None]:
        body = assert_error(api.request("POST", "/machines", {"slug": slug}), 400)
        assert body["code"] == "invalid-parameter" and body["parameter"] == "slug"
    assert api.ok("GET", "/machines")["machines"] == []


def test_missing_machine_is_404(api: Api) -> None:
    assert_error(api.request("GET", "/machines/nope"), 404)
    assert_error(api.delete_machine("nope"), 404)


def test_pagination_walks_every_machine_once(server: Server, api: Api) -> None:
    server.services.machines._page_size = 3
    names = [f"m{i}" for i in range(8)]
    for name in names:
        api.ok("POST", "/machines", {"slug": name})
    seen: list[str] = []
    page = api.ok("GET", "/machines")
    while True:
        seen += [m["slug"] for m in page["machines"]]
        if "cursor" not in page:
            break
        page = api.ok("GET", "/machines", params={"cursor": page["cursor"]})
    assert seen == names
    assert_error(api.request("GET", "/machines", params={"cursor": "garbage!"}), 400)


def test_delete_needs_the_right_hmac(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    wrong = {
        "dangerDataWillBeDeletedForever": True,
        "hmacSha256OfMachineNameWithMachineNameKey": "x",
    }
    body = assert_error(api.request("DELETE", "/machines/m", wrong), 400)
    assert body["parameter"] == "hmacSha256OfMachineNameWithMachineNameKey"
    not_sure = {**wrong, "dangerDataWillBeDeletedForever": False}
    assert_error(api.request("DELETE", "/machines/m", not_sure), 400)
    api.ok("GET", "/machines/m")

    response = api.delete_machine("m")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.request("GET", "/machines/m"), 404)


def test_delete_refuses_while_instances_exist(api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "c1")
    assert_error(api.delete_machine("counter"), 409, "invalid-state")
    api.ok("GET", "/machines/counter/i/c1")

    assert api.delete_instance("counter", "c1").status_code == 204
    assert api.delete_machine("counter").status_code == 204
    assert api.ok("GET", "/machines")["machines"] == []
