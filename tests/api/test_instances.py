"""Instances: create, read, events, transitions, admin view, status, delete."""

from __future__ import annotations

import time

from tests.conftest import Server
from tests.support.bundles import COUNTER, TIMER, TOGGLER
from tests.support.client import Api, assert_error


def test_create_returns_the_initial_state(api: Api) -> None:
    api.create_machine("counter", COUNTER)
    before = int(time.time() * 1000)
    state = api.create_instance("counter", "c1")
    assert state["state"] == "counting"
    assert state["publicContext"] == {"count": 0}
    assert state["tags"] == [] and state["done"] is False
    assert before - 5 <= state["ts"] <= int(time.time() * 1000) + 5


def test_public_context_is_omitted_without_public_key(api: Api) -> None:
    api.create_machine("toggler", TOGGLER)
    state = api.create_instance("toggler", "t")
    assert state == {"ts": state["ts"], "state": "off", "tags": [], "done": False}


def test_events_step_the_instance_and_ts_is_monotonic(api: Api) -> None:
    api.create_machine("counter", COUNTER)
    last = api.create_instance("counter", "c1")["ts"]
    for n in range(1, 6):
        response = api.send("counter", "c1", "inc")
        assert response.status_code == 200
        state = response.json()
        assert state["publicContext"] == {"count": n}
        assert state["ts"] > last
        last = state["ts"]
    state = api.send("counter", "c1", {"type": "inc", "by": 10}).json()
    assert state["publicContext"] == {"count": 15}
    got = api.ok("GET", "/machines/counter/i/c1")
    assert got == state
    done = api.send("counter", "c1", "finish").json()
    assert done["done"] is True and done["tags"] == ["finished"] and done["state"] == "done"


def test_create_merges_context_and_pins_the_version(api: Api) -> None:
    v1 = api.create_machine("counter", COUNTER)
    state = api.create_instance("counter", "c1", context={"count": 41, "extra": [1]})
    assert state["publicContext"] == {"count": 0}  # shallow merge: public kept from machine
    api.upload_version("counter", TOGGLER)  # new current version
    admin = api.ok("GET", "/machines/counter/i/c1/admin")
    assert admin["context"]["count"] == 41 and admin["context"]["extra"] == [1]
    assert admin["context"]["public"] == {"count": 0}
    assert admin["machineVersion"]["id"] == v1
    assert admin["status"] == "running" and admin["state"] == "counting"
    assert api.send("counter", "c1", "inc").json()["publicContext"] == {"count": 42}
    explicit = api.create_instance("counter", "c2", machineVersionId=v1)
    assert explicit["state"] == "counting"
    assert api.create_instance("counter", "t1")["state"] == "off"


def test_create_conflicts_and_bad_versions(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "c1")
    api.send("counter", "c1", "inc")
    assert_error(api.request("POST", "/machines/counter", {"slug": "c1"}), 409, "already-exists")
    # The name is checked before the machine runs: a caller its allowWrite refuses hears 409.
    with server.client(act={"sub": "blocked"}) as blocked:
        taken = blocked.request("POST", "/machines/counter", {"slug": "c1"})
        assert_error(taken, 409, "already-exists")
    assert api.ok("GET", "/machines/counter/i/c1")["publicContext"] == {"count": 1}
    other = api.create_machine("toggler", TOGGLER)
    provisional = api.ok("POST", "/machines/counter/v", {"clientInfo": "x"})["machineVersionId"]
    for version in ["ver_nope", "ver_AAAAAAAAAAAAAAAAAAAAAA", other, provisional.partition(".")[0]]:
        body = {"slug": "c2", "machineVersionId": version}
        bad = assert_error(api.request("POST", "/machines/counter", body), 404)
        assert bad["parameter"] == "machineVersionId", (version, bad)
    api.ok("POST", "/machines", {"slug": "empty"})
    empty = assert_error(api.request("POST", "/machines/empty", {"slug": "x"}), 400)
    assert empty["parameter"] == "machineVersionId"
    assert_error(api.request("POST", "/machines/empty", {"slug": "x", "machineVersionId": other}),
                 404)
    nope = assert_error(api.request("POST", "/machines/nope", {"slug": "x"}), 404)
    assert nope["parameter"] == "machineName"
    assert [i["slug"] for i in api.ok("GET", "/machines/counter/i")["instances"]] == ["c1"]


def test_list_instances(api: Api) -> None:
    version = api.create_machine("toggler", TOGGLER)
    for slug in ["a", "b", "c"]:
        api.create_instance("toggler", slug)
    listed = api.ok("GET", "/machines/toggler/i")["instances"]
    assert [i["slug"] for i in listed] == ["a", "b", "c"]
    assert {i["status"] for i in listed} == {"running"}
    assert {i["machineVersion"]["id"] for i in listed} == {version}


def test_authorizers_guard_reads_and_writes(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    with server.client(act={"sub": "blocked"}) as blocked:
        denied = blocked.request("POST", "/machines/counter", {"slug": "c0"})
        assert_error(denied, 403, "rejected-by-machine-authorizer")
    assert_error(api.request("GET", "/machines/counter/i/c0"), 404)

    api.create_instance("counter", "mine", context={"owner": "alice"})
    with server.client(act={"sub": "alice"}) as alice, server.client(act={"sub": "bob"}) as bob:
        assert alice.send("counter", "mine", "inc").status_code == 200
        assert_error(bob.send("counter", "mine", "inc"), 403, "rejected-by-machine-authorizer")
        assert_error(bob.request("GET", "/machines/counter/i/mine"), 403)
        assert alice.ok("GET", "/machines/counter/i/mine")["publicContext"] == {"count": 1}


def test_failed_events_change_nothing(api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "c1")
    api.send("counter", "c1", "inc")
    before = api.ok("GET", "/machines/counter/i/c1")
    transitions = api.ok("GET", "/machines/counter/i/c1/events")["transitions"]

    body = assert_error(api.send("counter", "c1", "boom"), 400)
    assert "boom" in body["error"]
    assert_error(api.send("counter", "c1", {"type": "grow", "size": 500_000}), 400)
    assert api.ok("GET", "/machines/counter/i/c1") == before
    assert api.ok("GET", "/machines/counter/i/c1/events")["transitions"] == transitions


def test_bad_events_are_rejected(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "c1")
    before = api.ok("GET", "/machines/counter/i/c1")
    for event in ["", {}, {"type": 3}, {"type": ""}, 7, None, ["inc"]]:
        assert_error(api.send("counter", "c1", event), 400, "invalid-parameter")
    assert_error(api.request("POST", "/machines/counter/i/c1/events", {}), 400)
    big = {"type": "inc", "pad": "x" * (server.settings.max_event_bytes + 1)}
    assert_error(api.send("counter", "c1", big), 413, "payload-too-large")
    assert_error(api.send("counter", "nope", "inc"), 404)
    assert_error(api.send("nope", "c1", "inc"), 404)
    assert api.ok("GET", "/machines/counter/i/c1") == before


def test_transitions_are_listed_oldest_first(server: Server, api: Api) -> None:
    server.services.instances._page_size = 2
    api.create_machine("toggler", TOGGLER)
    api.create_instance("toggler", "t")
    for _ in range(4):
        api.send("toggler", "t", "toggle")
    seen: list[tuple[str, str]] = []
    page = api.ok("GET", "/machines/toggler/i/t/events")
    while True:
        seen += [(t["event"]["type"], t["state"]) for t in page["transitions"]]
        assert all("createdAt" in t for t in page["transitions"])
        if "cursor" not in page:
            break
        page = api.ok("GET", "/machines/toggler/i/t/events", params={"cursor": page["cursor"]})
    assert seen == [
        ("xstate.init", "off"),
        ("toggle", "on"),
        ("toggle", "off"),
        ("toggle", "on"),
        ("toggle", "off"),
    ]
    assert_error(api.request("GET", "/machines/toggler/i/t/events?cursor=x"), 400)


def test_paused_instances_reject_events(api: Api) -> None:
    api.create_machine("toggler", TOGGLER)
    api.create_instance("toggler", "t")
    response = api.request("PUT", "/machines/toggler/i/t/status", {"status": "paused"})
    assert response.status_code == 204 and response.content == b""
    assert_error(api.send("toggler", "t", "toggle"), 409, "invalid-state")
    assert api.ok("GET", "/machines/toggler/i/t")["state"] == "off"
    assert api.ok("GET", "/machines/toggler/i/t/admin")["status"] == "paused"
    assert api.ok("GET", "/machines/toggler/i")["instances"][0]["status"] == "paused"
    assert_error(api.request("PUT", "/machines/toggler/i/t/status", {"status": "x"}), 400)
    api.ok("PUT", "/machines/toggler/i/t/status", {"status": "running"})
    assert api.send("toggler", "t", "toggle").json()["state"] == "on"


def test_delete_instance(api: Api) -> None:
    api.create_machine("timer", TIMER)
    api.create_instance("timer", "t")
    api.send("timer", "t", "start")
    wrong = {
        "dangerDataWillBeDeletedForever": True,
        "hmacSha256OfMachineInstanceNameWithMachineNameKey": "nope",
    }
    assert_error(api.request("DELETE", "/machines/timer/i/t", wrong), 400)
    response = api.delete_instance("timer", "t")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.request("GET", "/machines/timer/i/t"), 404)
    assert_error(api.request("GET", "/machines/timer/i/t/admin"), 404)
    assert_error(api.request("GET", "/machines/timer/i/t/events"), 404)
    assert_error(api.delete_instance("timer", "t"), 404)
    # the slug is free again
    assert api.create_instance("timer", "t")["state"] == "idle"


def test_missing_instances_are_404(api: Api) -> None:
    api.create_machine("toggler", TOGGLER)
    for path in [
        "/machines/toggler/i/x",
        "/machines/toggler/i/x/admin",
        "/machines/toggler/i/x/events",
        "/machines/nope/i/x",
        "/machines/nope/i",
    ]:
        assert_error(api.request("GET", path), 404)
    assert_error(api.request("PUT", "/machines/toggler/i/x/status", {"status": "paused"}), 404)
